//! Turning MCP shapes into what the model gets: exposed tool names, schemas and call results.

use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};

use crate::tools::{FailureKind, ToolFailure, MAX_OUTPUT_BYTES};

/// The longest tool name the Realtime API accepts.
const MAX_EXPOSED_LEN: usize = 64;
/// The longest error text of a tool passed on (the rest is cut: it is for talking, not parsing).
const MAX_ERROR_TEXT: usize = 500;

/// The name the model sees for `tool` of `server`: `<server>__<tool>`, every character outside
/// `[a-zA-Z0-9_-]` replaced by `_`, cut to 64 characters.
pub fn exposed_name(server: &str, tool: &str) -> String {
    format!("{server}__{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(MAX_EXPOSED_LEN)
        .collect()
}

/// The tool's input schema as a JSON value; an empty object schema when the server gave none.
pub(super) fn input_schema(schema: &rmcp::model::JsonObject) -> serde_json::Value {
    if schema.is_empty() {
        serde_json::json!({"type": "object", "properties": {}})
    } else {
        serde_json::Value::Object(schema.clone())
    }
}

/// The model's output for a tool's result: its text joined (structured content as JSON text when
/// there is no text), or the failure it stands for.
pub(super) fn call_output(
    server: &str,
    tool: &str,
    result: CallToolResult,
) -> Result<String, ToolFailure> {
    let mut texts = Vec::new();
    let mut other = None;
    for block in &result.content {
        match block {
            ContentBlock::Text(text) => texts.push(text.text.as_str()),
            ContentBlock::Resource(resource) => match &resource.resource {
                ResourceContents::TextResourceContents { text, .. } => texts.push(text.as_str()),
                _ => other = Some("a binary resource"),
            },
            ContentBlock::Image(_) => other = Some("an image"),
            ContentBlock::Audio(_) => other = Some("audio"),
            ContentBlock::ResourceLink(_) => other = Some("a resource link"),
            _ => other = Some("content of an unknown kind"),
        }
    }
    let text = if !texts.is_empty() {
        texts.join("\n")
    } else if let Some(structured) = &result.structured_content {
        structured.to_string()
    } else if let Some(kind) = other {
        return Err(ToolFailure::new(
            FailureKind::Malformed,
            format!("the tool '{tool}' of server '{server}' answered with {kind}, not text"),
        ));
    } else {
        String::new()
    };
    if result.is_error == Some(true) {
        let text = if text.is_empty() {
            format!("the tool '{tool}' of server '{server}' failed")
        } else {
            cut(&text, MAX_ERROR_TEXT)
        };
        return Err(ToolFailure::new(FailureKind::ToolError, text));
    }
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(ToolFailure::new(
            FailureKind::TooLarge,
            format!(
                "the answer of the tool '{tool}' of server '{server}' was {} KB, over the {} KB limit",
                text.len().div_ceil(1024),
                MAX_OUTPUT_BYTES / 1024
            ),
        ));
    }
    Ok(text)
}

/// At most `max` bytes of `text`, cut at a character boundary, with "…" when cut.
pub(super) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: serde_json::Value) -> CallToolResult {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn exposed_names_are_sanitized_and_capped() {
        assert_eq!(
            exposed_name("orders", "lookup_order"),
            "orders__lookup_order"
        );
        assert_eq!(
            exposed_name("crm", "contacts.find v2"),
            "crm__contacts_find_v2"
        );
        let long = exposed_name(&"s".repeat(32), &"t".repeat(60));
        assert_eq!(long.len(), 64);
        assert_eq!(exposed_name("a", "é"), "a___");
    }

    #[test]
    fn empty_schema_becomes_an_object_schema() {
        let schema = input_schema(&Default::default());
        assert_eq!(schema, json!({"type": "object", "properties": {}}));
    }

    #[test]
    fn texts_are_joined() {
        let r = result(
            json!({"content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
        );
        assert_eq!(call_output("s", "t", r).unwrap(), "a\nb");
    }

    #[test]
    fn structured_content_alone_becomes_json_text() {
        let r = result(json!({"content": [], "structuredContent": {"eta": "tomorrow"}}));
        assert_eq!(call_output("s", "t", r).unwrap(), r#"{"eta":"tomorrow"}"#);
    }

    #[test]
    fn errors_images_and_size() {
        let r = result(json!({"content": [{"type": "text", "text": "down"}], "isError": true}));
        let e = call_output("s", "t", r).unwrap_err();
        assert_eq!(
            (e.kind, e.message.as_str()),
            (FailureKind::ToolError, "down")
        );

        let r = result(
            json!({"content": [{"type": "image", "data": "AAAA", "mimeType": "image/png"}]}),
        );
        assert_eq!(
            call_output("s", "t", r).unwrap_err().kind,
            FailureKind::Malformed
        );

        let big = "x".repeat(MAX_OUTPUT_BYTES + 1);
        let r = result(json!({"content": [{"type": "text", "text": big}]}));
        assert_eq!(
            call_output("s", "t", r).unwrap_err().kind,
            FailureKind::TooLarge
        );
    }

    #[test]
    fn cut_respects_characters() {
        assert_eq!(cut("héllo", 2), "h…");
        assert_eq!(cut("abc", 3), "abc");
    }
}
