//! The conversation a request carries, shared rather than copied: the engine
//! keeps one list per run and hands each model call a reference-counted view
//! of it, so a run of n steps does not copy O(n²) messages.

use agentd_core::Message;
use std::ops::Deref;
use std::sync::Arc;

/// A shared, append-only list of messages. Cloning it is a reference-count
/// increment; [`Messages::push`] copies the list only while another clone
/// (a request still in flight) shares it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Messages(Arc<Vec<Message>>);

impl Messages {
    /// Appends `message`.
    pub fn push(&mut self, message: Message) {
        Arc::make_mut(&mut self.0).push(message);
    }

    /// Replaces message `index` (a guardrail quoting a run's input before
    /// any call sees it); `false` if there is no such message.
    pub fn replace(&mut self, index: usize, message: Message) -> bool {
        match Arc::make_mut(&mut self.0).get_mut(index) {
            Some(m) => {
                *m = message;
                true
            }
            None => false,
        }
    }
}

impl Deref for Messages {
    type Target = [Message];

    fn deref(&self) -> &[Message] {
        &self.0
    }
}

impl From<Vec<Message>> for Messages {
    fn from(messages: Vec<Message>) -> Self {
        Self(Arc::new(messages))
    }
}

impl<'a> IntoIterator for &'a Messages {
    type Item = &'a Message;
    type IntoIter = std::slice::Iter<'a, Message>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use agentd_core::Role;

    #[test]
    fn a_clone_shares_the_list_and_push_leaves_it_unchanged() {
        let mut own = Messages::from(vec![Message::text(Role::User, "a")]);
        let sent = own.clone();
        assert!(std::ptr::eq(own.as_ptr(), sent.as_ptr()));
        own.push(Message::text(Role::Assistant, "b"));
        assert_eq!(sent.len(), 1);
        assert_eq!(own.len(), 2);
        drop(sent);
        own.push(Message::text(Role::User, "c"));
        assert_eq!(own.len(), 3);
    }
}
