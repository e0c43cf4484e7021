//! Mail the server sends: the outbox dispatcher and the one-time links it
//! puts in approval mails.

pub mod links;
pub mod outbox;
