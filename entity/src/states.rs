//! The states a row can be in, stored as their snake_case names (the columns are plain strings,
//! so adding a state needs no migration).
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

macro_rules! state {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vdoc])* #[sea_orm(string_value = $value)] $variant,)+
        }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $value,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

state!(
    /// Whether the app is installed in the store's program.
    StoreStatus { Active = "active", Uninstalled = "uninstalled" }
);

state!(
    /// Where the store's Amazon connection stands.
    ConnectionStatus {
        /// Signed in; the merchant must pick a profile and advertiser.
        ChooseAccount = "choose_account",
        Connected = "connected",
        /// No profile of the region can use Amazon Attribution.
        NotEligible = "not_eligible",
        /// Amazon refused the refresh token (`invalid_grant`): the merchant must connect again.
        NeedsReconnect = "needs_reconnect",
    }
);

state!(
    /// A job's place in the queue.
    JobStatus {
        Pending = "pending",
        Running = "running",
        Done = "done",
        /// Failed for good: a dead letter.
        Dead = "dead",
        Cancelled = "cancelled",
    }
);

state!(
    /// An order's status in the program: `rejected` when the day's commission is zero.
    OrderStatus { Approved = "approved", Rejected = "rejected" }
);

state!(
    /// Where an order's push stands.
    PushState {
        /// Not due yet (younger than `push_after_days`).
        Waiting = "waiting",
        /// A push job is queued or running.
        Pending = "pending",
        /// The program shows the current version.
        Pushed = "pushed",
        /// The program refused it for good: a dead letter.
        Dead = "dead",
    }
);

state!(
    /// How a sync run ended.
    RunStatus { Running = "running", Ok = "ok", Failed = "failed" }
);

state!(
    /// Which of Amazon's sales figures commissions are computed on.
    SalesBasis {
        /// `attributedSales14d` / `attributedPurchases14d`: the promoted products.
        Promoted = "promoted",
        /// `totalAttributedSales14d` / `attributedTotalPurchases14d`: promoted + brand halo.
        Total = "total",
    }
);

state!(
    /// A decrease held for the merchant (DESIGN §5: one sync would lower too much at once).
    HoldState {
        /// Waiting for the merchant's Apply or Discard.
        Held = "held",
        /// The merchant kept the order as it is; the same proposal is not held again.
        Discarded = "discarded",
    }
);
