//! Where the clients' and the domain's failures become job failures: classified once, here, as
//! transient, throttled, permanent or a bug (DESIGN §4.4: 408, 429, 5xx, timeouts and connection
//! errors are retried; any other 4xx is permanent).
use crate::{
    clients::{amazon::ads::AmazonError, http::Retry, program::ProgramError},
    crypto::CryptoError,
    domain::commission::InvalidCommission,
    flows::{
        lifecycle::ProgramTokenError,
        tokens::{AuthError, CallError},
    },
    jobs::JobError,
};

/// An upstream's failure, as the job schedule sees it.
fn upstream(retry: Retry, detail: String) -> JobError {
    match retry {
        Retry::Throttled(retry_after) => JobError::Throttled {
            retry_after,
            detail,
        },
        Retry::Later { status, overloaded } => JobError::Transient {
            status,
            overloaded,
            detail,
        },
        Retry::Never { status } => JobError::Permanent { status, detail },
    }
}

impl From<AmazonError> for JobError {
    fn from(e: AmazonError) -> Self {
        match e {
            // Refreshed once already and still refused: Amazon's side may be settling.
            AmazonError::Unauthorized => Self::Transient {
                status: Some(401),
                overloaded: false,
                detail: e.to_string(),
            },
            other => upstream(other.retry(), other.to_string()),
        }
    }
}

impl From<CallError> for JobError {
    fn from(e: CallError) -> Self {
        match e {
            CallError::Auth(AuthError::NotConnected) => {
                Self::Cancelled("Amazon is not connected".into())
            }
            CallError::Auth(AuthError::NeedsReconnect) => {
                Self::permanent("Amazon access was revoked; reconnect Amazon")
            }
            CallError::Auth(AuthError::Lwa(l)) if l.is_transient() => {
                Self::transient(l.to_string())
            }
            CallError::Auth(AuthError::Db(e)) => e.into(),
            CallError::Auth(other) => Self::permanent(other.to_string()),
            CallError::Amazon(a) => a.into(),
        }
    }
}

impl From<ProgramError> for JobError {
    fn from(e: ProgramError) -> Self {
        upstream(e.retry(), e.to_string())
    }
}

/// A stored commission the domain refuses: a person must look.
impl From<InvalidCommission> for JobError {
    fn from(e: InvalidCommission) -> Self {
        Self::permanent(e.to_string())
    }
}

/// A sealed token that does not open (another key, tampering): a person must look.
impl From<CryptoError> for JobError {
    fn from(e: CryptoError) -> Self {
        Self::permanent(e.to_string())
    }
}

impl From<ProgramTokenError> for JobError {
    fn from(e: ProgramTokenError) -> Self {
        match e {
            ProgramTokenError::Db(db) => db.into(),
            ProgramTokenError::Crypto(c) => c.into(),
        }
    }
}
