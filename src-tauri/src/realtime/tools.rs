//! The tools Verbio itself gives the agent, in one list: the session config offers them to the model,
//! the services list them for the UI, and the bridge picks a call's handler by [`BuiltIn`].

use serde_json::{json, Value};

use crate::realtime::session::{SessionConfig, END_CALL_TOOL, TRANSFER_CALL_TOOL};

/// Which built-in behaviour a tool call asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    /// Hang up once the goodbye has played.
    EndCall,
    /// Hand the caller to the session's transfer number once the last words have played.
    TransferCall,
}

/// One built-in tool: its name and schema for the model, its label for people, and when it is offered.
#[derive(Debug, Clone, Copy)]
pub struct BuiltInTool {
    pub kind: BuiltIn,
    pub name: &'static str,
    /// What the model reads.
    pub description: &'static str,
    /// What the UI shows.
    pub label: &'static str,
    /// Description of the single optional `reason` argument.
    pub reason: &'static str,
    offered: fn(&SessionConfig) -> bool,
}

impl BuiltInTool {
    /// Whether a session with this config offers the tool.
    pub fn offered_in(&self, session: &SessionConfig) -> bool {
        (self.offered)(session)
    }

    /// The GA `tools[]` entry.
    pub fn definition(&self) -> Value {
        json!({
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": {
                "type": "object",
                "properties": {"reason": {"type": "string", "description": self.reason}},
                "required": [],
            },
        })
    }
}

/// Every built-in tool, in the order they are offered.
pub const BUILT_IN_TOOLS: &[BuiltInTool] = &[
    BuiltInTool {
        kind: BuiltIn::EndCall,
        name: END_CALL_TOOL,
        description: "Hang up the call. Use only after saying goodbye, when the caller is done.",
        label: "Hang up after saying goodbye",
        reason: "Why the call ends",
        offered: |_| true,
    },
    BuiltInTool {
        kind: BuiltIn::TransferCall,
        name: TRANSFER_CALL_TOOL,
        description: "Transfer the caller to a human colleague. Tell the caller first that you are transferring them.",
        label: "Transfer the caller to the session's transfer number",
        reason: "Why the caller needs a person",
        offered: |s| s.transfer_number.is_some(),
    },
];

/// The built-in tool called `name`, if any.
pub fn built_in(name: &str) -> Option<&'static BuiltInTool> {
    BUILT_IN_TOOLS.iter().find(|t| t.name == name)
}

/// The built-in tools a session offers.
pub fn offered(session: &SessionConfig) -> impl Iterator<Item = &'static BuiltInTool> + '_ {
    BUILT_IN_TOOLS.iter().filter(move |t| t.offered_in(session))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transfer_is_offered_only_with_a_number() {
        let mut s = SessionConfig::default();
        let names = |s: &SessionConfig| offered(s).map(|t| t.name).collect::<Vec<_>>();
        assert_eq!(names(&s), ["end_call"]);
        s.transfer_number = Some("+14155550199".into());
        assert_eq!(names(&s), ["end_call", "transfer_call"]);
        assert_eq!(
            built_in("transfer_call").map(|t| t.kind),
            Some(BuiltIn::TransferCall)
        );
        assert!(built_in("lookup_order").is_none());
    }
}
