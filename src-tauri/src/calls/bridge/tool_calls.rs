//! Function calls inside responses: acted on only once their item completed.
//!
//! The service sends `response.function_call_arguments.done` for every function call it started,
//! including those of responses that were interrupted or cancelled; the item's own
//! `response.output_item.done` says whether it `completed`. Acting on arguments-done would hang up or
//! transfer on a call the model never finished making.

use std::collections::HashMap;

/// A function call the model completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionCall {
    pub call_id: String,
    pub name: String,
    pub arguments: String,
}

#[derive(Debug, Default)]
struct Partial {
    name: Option<String>,
    call_id: Option<String>,
    arguments: Option<String>,
}

/// Function-call items of the running response(s), by item id.
#[derive(Debug, Default)]
pub struct ToolCalls {
    items: HashMap<String, Partial>,
}

impl ToolCalls {
    pub fn new() -> Self {
        Self::default()
    }

    /// `response.output_item.added` for a function call.
    pub fn on_added(&mut self, item_id: String, name: Option<String>) {
        self.items.entry(item_id).or_default().name = name;
    }

    /// `response.function_call_arguments.done`: remembered, not acted on.
    pub fn on_arguments_done(
        &mut self,
        item_id: Option<String>,
        call_id: String,
        name: Option<String>,
        arguments: String,
    ) {
        let key = item_id.unwrap_or_else(|| call_id.clone());
        let entry = self.items.entry(key).or_default();
        entry.call_id = Some(call_id);
        if name.is_some() {
            entry.name = name;
        }
        entry.arguments = Some(arguments);
    }

    /// `response.output_item.done` for a function call: the call to carry out if its status is
    /// `completed`, else `None` (and the item is forgotten).
    pub fn on_item_done(
        &mut self,
        item_id: Option<&str>,
        status: Option<&str>,
        call_id: Option<String>,
        name: Option<String>,
        arguments: Option<String>,
    ) -> Option<FunctionCall> {
        let known = item_id
            .and_then(|id| self.items.remove(id))
            .unwrap_or_default();
        if status != Some("completed") {
            return None;
        }
        let call_id = call_id.or(known.call_id)?;
        Some(FunctionCall {
            call_id,
            name: name.or(known.name).unwrap_or_default(),
            arguments: arguments.or(known.arguments).unwrap_or_default(),
        })
    }

    /// A response ended: whatever of it never reached `output_item.done` is dropped.
    pub fn on_response_done(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_completed_items_are_carried_out() {
        let mut t = ToolCalls::new();
        t.on_added("fc1".into(), Some("end_call".into()));
        t.on_arguments_done(Some("fc1".into()), "c1".into(), None, "{}".into());
        // The response was cancelled: the item ends incomplete.
        assert_eq!(
            t.on_item_done(Some("fc1"), Some("incomplete"), None, None, None),
            None
        );
        t.on_added("fc2".into(), Some("transfer_call".into()));
        t.on_arguments_done(
            Some("fc2".into()),
            "c2".into(),
            None,
            r#"{"reason":"x"}"#.into(),
        );
        assert_eq!(
            t.on_item_done(Some("fc2"), Some("completed"), None, None, None),
            Some(FunctionCall {
                call_id: "c2".into(),
                name: "transfer_call".into(),
                arguments: r#"{"reason":"x"}"#.into()
            })
        );
    }

    #[test]
    fn arguments_done_alone_is_never_a_call() {
        let mut t = ToolCalls::new();
        t.on_arguments_done(
            Some("fc1".into()),
            "c1".into(),
            Some("end_call".into()),
            "{}".into(),
        );
        t.on_response_done();
        assert_eq!(
            t.on_item_done(Some("fc1"), Some("completed"), None, None, None),
            None
        );
    }
}
