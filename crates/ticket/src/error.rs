//! Why a ticket, a key or an endorsement was refused. Messages name the field that failed,
//! never a key's private part.

/// A refusal; the `Display` text is what an `OpenReply` error carries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("open without a ticket")]
    Missing,
    #[error("malformed ticket: {0}")]
    Malformed(&'static str),
    #[error("ticket signed by unknown key {0}")]
    UnknownKey(String),
    #[error("ticket signature does not verify")]
    BadSignature,
    #[error("ticket expired")]
    Expired,
    #[error("ticket not valid yet")]
    NotYetValid,
    #[error("ticket lives too long")]
    TooLong,
    #[error("ticket is for another {0}")]
    Mismatch(&'static str),
    #[error("ticket without a user")]
    NoUser,
    #[error("ticket already used")]
    Replayed,
    #[error("too many live tickets; try again")]
    ReplayCacheFull,
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    #[error("key endorsed by unknown key {0}")]
    UntrustedEndorser(String),
    #[error("key endorsement signature does not verify")]
    BadEndorsement,
    #[error("no ticket keys pinned")]
    NoKeys,
}
