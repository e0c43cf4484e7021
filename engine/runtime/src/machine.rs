//! What every state machine returns.

/// The result of feeding an event to a state machine.
#[derive(Debug, Clone, PartialEq)]
#[must_use = "persist the new state, then perform the effects"]
pub enum Transition<S, E> {
    /// The machine moved (possibly to the same kind of state with new data).
    /// Persist `state` first, then perform `effects` in order.
    To {
        /// The new state.
        state: S,
        /// What the driver must do once the state is committed.
        effects: Vec<E>,
    },
    /// The machine is in a terminal state and ignores the event on purpose
    /// (a cancel arriving after success, a late attempt result). Nothing to
    /// persist, nothing to do.
    Absorbed {
        /// The unchanged state.
        state: S,
    },
}

impl<S, E> Transition<S, E> {
    /// The state after the event.
    pub fn state(&self) -> &S {
        match self {
            Transition::To { state, .. } | Transition::Absorbed { state } => state,
        }
    }

    /// The effects to perform (none when absorbed).
    pub fn effects(&self) -> &[E] {
        match self {
            Transition::To { effects, .. } => effects,
            Transition::Absorbed { .. } => &[],
        }
    }
}

/// An event that makes no sense in the current state: a bug in the driver
/// or a corrupted record. The state is left as it was.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{machine}: event `{event}` is not allowed in state `{state}`")]
pub struct InvalidTransition {
    /// Which machine (`run`, `step`, `attempt`).
    pub machine: &'static str,
    /// The state's name.
    pub state: &'static str,
    /// The event's name.
    pub event: &'static str,
}
