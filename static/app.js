// The Copy buttons of the Affiliates pages: progressive enhancement only. Without this script the
// buttons stay hidden and each link stays in a read-only field that can be selected and copied.
(function () {
  "use strict";
  var status = document.getElementById("copy-status");
  var buttons = document.querySelectorAll("button[data-copy]");
  if (!navigator.clipboard) { return; }
  buttons.forEach(function (b) { b.hidden = false; });
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) { return; }
    navigator.clipboard.writeText(field.value).then(function () {
      button.textContent = "Copied";
      if (status) { status.textContent = "Link copied."; }
      setTimeout(function () { button.textContent = "Copy"; }, 2000);
    }, function () {
      field.select();
      if (status) { status.textContent = "Select the link and copy it."; }
    });
  });
})();
