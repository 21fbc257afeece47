//! The agent's session configuration and its GA `session.update` shape.
//!
//! [`SessionConfig`] is what the user edits (TOML, API, UI). [`SessionConfig::session_object`] turns it into the
//! GA `session` object: audio is `audio/pcmu` both ways so Twilio's μ-law passes through untouched, there is no
//! `temperature` (the GA API has none: reasoning effort and output speed replace it), and the built-in
//! `end_call` tool is always present.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Default model: the newest GA realtime model.
pub const DEFAULT_MODEL: &str = "gpt-realtime-2.1";

/// Models offered when the live list (`GET /v1/models`) cannot be read, newest first.
pub const KNOWN_MODELS: &[&str] = crate::realtime::models::KNOWN_FAMILIES;

/// Name of the built-in tool that lets the agent hang up after saying goodbye.
pub const END_CALL_TOOL: &str = "end_call";
/// Name of the built-in tool that hands the caller to a person (offered when a transfer number is set).
pub const TRANSFER_CALL_TOOL: &str = "transfer_call";

/// Longest instructions accepted (characters); keeps a pasted document from becoming a prompt.
pub const MAX_INSTRUCTIONS_CHARS: usize = 16_000;

/// The ten GA voices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Voice {
    Alloy,
    Ash,
    Ballad,
    Coral,
    Echo,
    Sage,
    Shimmer,
    Verse,
    #[default]
    Marin,
    Cedar,
}

impl Voice {
    pub const ALL: [Voice; 10] = [
        Voice::Alloy,
        Voice::Ash,
        Voice::Ballad,
        Voice::Coral,
        Voice::Echo,
        Voice::Sage,
        Voice::Shimmer,
        Voice::Verse,
        Voice::Marin,
        Voice::Cedar,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Voice::Alloy => "alloy",
            Voice::Ash => "ash",
            Voice::Ballad => "ballad",
            Voice::Coral => "coral",
            Voice::Echo => "echo",
            Voice::Sage => "sage",
            Voice::Shimmer => "shimmer",
            Voice::Verse => "verse",
            Voice::Marin => "marin",
            Voice::Cedar => "cedar",
        }
    }
}

/// Reasoning effort (2.x models only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

/// `max_output_tokens`: 1..=4096 or unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MaxOutputTokens {
    Limit(u32),
    Inf(InfTag),
}

/// The literal `"inf"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InfTag {
    Inf,
}

impl Default for MaxOutputTokens {
    fn default() -> Self {
        MaxOutputTokens::Inf(InfTag::Inf)
    }
}

/// Input transcription (the caller's words in the transcript).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transcription {
    /// `gpt-4o-mini-transcribe`, `gpt-4o-transcribe`, `whisper-1`, …
    pub model: String,
    /// ISO-639-1 hint such as `en`; `None` lets the model detect it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

impl Default for Transcription {
    fn default() -> Self {
        Transcription {
            model: "gpt-4o-mini-transcribe".into(),
            language: None,
        }
    }
}

/// How the model decides that the caller has finished a turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum TurnDetection {
    ServerVad {
        threshold: f64,
        prefix_padding_ms: u32,
        silence_duration_ms: u32,
    },
    SemanticVad {
        eagerness: Eagerness,
    },
}

impl Default for TurnDetection {
    fn default() -> Self {
        TurnDetection::ServerVad {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Eagerness {
    Low,
    Medium,
    High,
    Auto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoiseReduction {
    NearField,
    FarField,
}

/// Whether the agent greets first or waits for the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum Greeting {
    /// Say nothing until the caller speaks (the default: no unprompted greeting).
    #[default]
    WaitForCaller,
    /// Send one `response.create` asking the model to say `opening_line`.
    SpeakFirst { opening_line: String },
}

/// A function tool offered to the model (besides the built-in `end_call`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionTool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments.
    pub parameters: Value,
    /// The operator approves each call of it first (while the agent tells the caller it is checking).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub needs_approval: bool,
    /// The user's HTTP endpoint that does the work (a signed POST; see `tools::http`). `None`: nothing
    /// is behind the tool, and the model hears so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<crate::tools::http::ToolEndpoint>,
}

/// Everything the agent's model session is configured with. The caller can never change it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    pub model: String,
    pub voice: Voice,
    pub instructions: String,
    pub max_output_tokens: MaxOutputTokens,
    /// `None` turns input transcription off (no caller lines in the transcript).
    pub transcription: Option<Transcription>,
    pub turn_detection: TurnDetection,
    /// `None` turns noise reduction off.
    pub noise_reduction: Option<NoiseReduction>,
    /// Sent only to models that take it (2.x).
    pub reasoning_effort: Option<ReasoningEffort>,
    /// Output speech speed, 0.25–1.5.
    pub speed: f64,
    pub tools: Vec<FunctionTool>,
    pub greeting: Greeting,
    /// Where `transfer_call` sends the caller (E.164). `None` leaves the tool out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_number: Option<String>,
    /// How long a tool call waits for the operator's approval before it is declined, seconds (5–300).
    pub tool_approval_timeout_secs: u32,
    /// MCP servers whose allowed tools the agent may use (see `tools::mcp`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mcp_servers: Vec<crate::tools::mcp::McpServerConfig>,
    /// The post-call summary (off by default; see [`crate::summary`]).
    pub summary: crate::summary::SummaryConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            model: DEFAULT_MODEL.into(),
            voice: Voice::default(),
            instructions:
                "You are a helpful, concise phone agent. Speak naturally and keep answers short."
                    .into(),
            max_output_tokens: MaxOutputTokens::default(),
            transcription: Some(Transcription::default()),
            turn_detection: TurnDetection::default(),
            noise_reduction: Some(NoiseReduction::NearField),
            reasoning_effort: Some(ReasoningEffort::Low),
            speed: 1.0,
            tools: Vec::new(),
            greeting: Greeting::default(),
            transfer_number: None,
            tool_approval_timeout_secs: DEFAULT_APPROVAL_TIMEOUT_SECS,
            mcp_servers: Vec::new(),
            summary: crate::summary::SummaryConfig::default(),
        }
    }
}

/// How long a tool call waits for the operator's approval by default.
pub const DEFAULT_APPROVAL_TIMEOUT_SECS: u32 = 30;

/// A session setting out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid session setting {field}: {message}")]
pub struct SessionConfigError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> SessionConfigError {
    SessionConfigError {
        field,
        message: message.into(),
    }
}

/// True for models known to accept `reasoning.effort` (see [`crate::realtime::models`]).
pub fn model_takes_reasoning(model: &str) -> bool {
    crate::realtime::models::takes_reasoning(model)
}

impl SessionConfig {
    /// Checks ranges the API would otherwise reject mid-call.
    pub fn validate(&self) -> Result<(), SessionConfigError> {
        if self.model.trim().is_empty() {
            return Err(invalid("model", "must not be empty"));
        }
        if !(5..=300).contains(&self.tool_approval_timeout_secs) {
            return Err(invalid(
                "tool_approval_timeout_secs",
                format!("{} is outside 5–300", self.tool_approval_timeout_secs),
            ));
        }
        if !(0.25..=1.5).contains(&self.speed) {
            return Err(invalid(
                "speed",
                format!("{} is outside 0.25–1.5", self.speed),
            ));
        }
        if let MaxOutputTokens::Limit(n) = self.max_output_tokens {
            if !(1..=4096).contains(&n) {
                return Err(invalid(
                    "max_output_tokens",
                    format!("{n} is outside 1–4096"),
                ));
            }
        }
        let chars = self.instructions.chars().count();
        if chars > MAX_INSTRUCTIONS_CHARS {
            return Err(invalid(
                "instructions",
                format!("{chars} characters; at most {MAX_INSTRUCTIONS_CHARS}"),
            ));
        }
        if let TurnDetection::ServerVad { threshold, .. } = self.turn_detection {
            if !(0.0..=1.0).contains(&threshold) {
                return Err(invalid(
                    "turn_detection.threshold",
                    format!("{threshold} is outside 0–1"),
                ));
            }
        }
        if let Some(number) = &self.transfer_number {
            crate::telephony::phone::E164::parse(number)
                .map_err(|e| invalid("transfer_number", e.to_string()))?;
        }
        for tool in &self.tools {
            if crate::realtime::tools::built_in(&tool.name).is_some() {
                return Err(invalid("tools", format!("{} is built in", tool.name)));
            }
            if tool.name.is_empty()
                || !tool
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(invalid(
                    "tools",
                    format!("{:?} is not a valid tool name", tool.name),
                ));
            }
            if let Some(endpoint) = &tool.endpoint {
                endpoint.validate().map_err(|why| {
                    invalid("tools", format!("{}: the endpoint {why}", tool.name))
                })?;
            }
        }
        crate::tools::mcp::validate_list(&self.mcp_servers)
            .map_err(|why| invalid("mcp_servers", why))?;
        self.summary
            .validate()
            .map_err(|e| invalid(e.field, e.message))?;
        if let Greeting::SpeakFirst { opening_line } = &self.greeting {
            if opening_line.trim().is_empty() {
                return Err(invalid(
                    "greeting.opening_line",
                    "speak-first needs an opening line",
                ));
            }
        }
        Ok(())
    }

    /// The GA `session` object for `session.update`.
    pub fn session_object(&self) -> Value {
        self.session_object_without(&[])
    }

    /// The session object without the optional fields named (dotted `session.` params as the
    /// service's `error.param` names them). A session whose update was refused for an optional field
    /// is retried without it; required fields (audio formats, model, instructions) are never dropped.
    pub fn session_object_without(&self, dropped: &[OptionalField]) -> Value {
        let mut input = json!({
            "format": {"type": "audio/pcmu"},
            "noise_reduction": self.noise_reduction.map(|n| json!({"type": n})),
            "transcription": self.transcription.as_ref().map(|t| {
                let mut v = json!({"model": t.model});
                if let Some(lang) = &t.language {
                    v["language"] = json!(lang);
                }
                v
            }),
        });
        input["turn_detection"] = self.turn_detection_object(Responding::Auto);
        let mut tools: Vec<Value> = crate::realtime::tools::offered(self)
            .map(|t| t.definition())
            .collect();
        tools.extend(self.tools.iter().map(|t| {
            json!({"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters})
        }));
        let mut session = json!({
            "type": "realtime",
            "model": self.model,
            "output_modalities": ["audio"],
            "instructions": self.instructions,
            "audio": {
                "input": input,
                "output": {"format": {"type": "audio/pcmu"}, "voice": self.voice, "speed": self.speed},
            },
            "max_output_tokens": self.max_output_tokens,
            "tool_choice": "auto",
            "tools": tools,
        });
        if let (Some(effort), true) = (self.reasoning_effort, model_takes_reasoning(&self.model)) {
            session["reasoning"] = json!({"effort": effort});
        }
        // A dropped field is left out (the service keeps its default), not set to null: a refusal may be
        // about the field being there at all.
        let remove = |v: &mut Value, key: &str| {
            if let Some(obj) = v.as_object_mut() {
                obj.remove(key);
            }
        };
        for field in dropped {
            match field {
                OptionalField::Reasoning => remove(&mut session, "reasoning"),
                OptionalField::NoiseReduction => {
                    remove(&mut session["audio"]["input"], "noise_reduction")
                }
                OptionalField::Transcription => {
                    remove(&mut session["audio"]["input"], "transcription")
                }
                OptionalField::Speed => remove(&mut session["audio"]["output"], "speed"),
                OptionalField::MaxOutputTokens => remove(&mut session, "max_output_tokens"),
            }
        }
        session
    }
}

/// Whether the model answers the caller on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Responding {
    /// Turn detection creates a response at the end of each caller turn and cuts the model off when
    /// the caller speaks (the normal call).
    Auto,
    /// The model only listens: turn detection still finds the caller's turns (they are committed and
    /// transcribed) but creates and interrupts no response (the operator holds the call).
    ListenOnly,
}

impl SessionConfig {
    /// The `audio.input.turn_detection` object. Sent whole, never as a partial patch: the service does
    /// not promise to merge a partial turn detection into the current one.
    pub fn turn_detection_object(&self, responding: Responding) -> Value {
        let auto = responding == Responding::Auto;
        match &self.turn_detection {
            TurnDetection::ServerVad {
                threshold,
                prefix_padding_ms,
                silence_duration_ms,
            } => json!({
                "type": "server_vad",
                "threshold": threshold,
                "prefix_padding_ms": prefix_padding_ms,
                "silence_duration_ms": silence_duration_ms,
                "create_response": auto,
                "interrupt_response": auto,
            }),
            TurnDetection::SemanticVad { eagerness } => json!({
                "type": "semantic_vad",
                "eagerness": eagerness,
                "create_response": auto,
                "interrupt_response": auto,
            }),
        }
    }

    /// The session object that switches only how the model responds (operator take-over and
    /// hand-back); everything else stays as configured.
    pub fn responding_update(&self, responding: Responding) -> Value {
        json!({
            "type": "realtime",
            "audio": {"input": {"turn_detection": self.turn_detection_object(responding)}},
        })
    }
}

/// Session fields a call can do without: a `session.update` refused because of one of them is
/// retried once without it (the call keeps working with the service's default for that field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionalField {
    Reasoning,
    NoiseReduction,
    Transcription,
    Speed,
    MaxOutputTokens,
}

impl OptionalField {
    /// The field's dotted path, as the service's `error.param` names it.
    pub fn param(self) -> &'static str {
        match self {
            OptionalField::Reasoning => "session.reasoning",
            OptionalField::NoiseReduction => "session.audio.input.noise_reduction",
            OptionalField::Transcription => "session.audio.input.transcription",
            OptionalField::Speed => "session.audio.output.speed",
            OptionalField::MaxOutputTokens => "session.max_output_tokens",
        }
    }

    /// The optional field an error's `param` names (`session.reasoning.effort` → reasoning), if any.
    ///
    /// ```
    /// use verbio::realtime::session::OptionalField;
    /// assert_eq!(OptionalField::from_param("session.reasoning.effort"), Some(OptionalField::Reasoning));
    /// assert_eq!(OptionalField::from_param("session.audio.input.format"), None);
    /// ```
    pub fn from_param(param: &str) -> Option<OptionalField> {
        let p = param.strip_prefix("session.").unwrap_or(param);
        let is = |prefix: &str| p == prefix || p.starts_with(&format!("{prefix}."));
        if is("reasoning") {
            Some(OptionalField::Reasoning)
        } else if is("audio.input.noise_reduction") {
            Some(OptionalField::NoiseReduction)
        } else if is("audio.input.transcription") {
            Some(OptionalField::Transcription)
        } else if is("audio.output.speed") {
            Some(OptionalField::Speed)
        } else if is("max_output_tokens") {
            Some(OptionalField::MaxOutputTokens)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_session_is_ga_pcmu_without_temperature() {
        let s = SessionConfig::default().session_object();
        assert_eq!(s["type"], "realtime");
        assert_eq!(s["model"], DEFAULT_MODEL);
        assert_eq!(s["audio"]["input"]["format"]["type"], "audio/pcmu");
        assert_eq!(s["audio"]["output"]["format"]["type"], "audio/pcmu");
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(s["max_output_tokens"], "inf");
        assert_eq!(s["reasoning"]["effort"], "low");
        assert_eq!(s["tools"][0]["name"], END_CALL_TOOL);
        let text = s.to_string();
        assert!(!text.contains("temperature") && !text.contains("g711_ulaw"));
    }

    #[test]
    fn reasoning_only_for_2x_models_and_options_off() {
        let c = SessionConfig {
            model: "gpt-realtime-mini".into(),
            transcription: None,
            noise_reduction: None,
            max_output_tokens: MaxOutputTokens::Limit(300),
            turn_detection: TurnDetection::SemanticVad {
                eagerness: Eagerness::High,
            },
            ..SessionConfig::default()
        };
        let s = c.session_object();
        assert!(s.get("reasoning").is_none());
        assert!(s["audio"]["input"]["transcription"].is_null());
        assert!(s["audio"]["input"]["noise_reduction"].is_null());
        assert_eq!(s["max_output_tokens"], 300);
        assert_eq!(
            s["audio"]["input"]["turn_detection"]["type"],
            "semantic_vad"
        );
    }

    #[test]
    fn validation_rejects_out_of_range_settings() {
        let ok = SessionConfig::default();
        assert!(ok.validate().is_ok());
        let bad = |f: fn(&mut SessionConfig)| {
            let mut c = SessionConfig::default();
            f(&mut c);
            c.validate().unwrap_err().field
        };
        assert_eq!(bad(|c| c.speed = 2.0), "speed");
        assert_eq!(
            bad(|c| c.max_output_tokens = MaxOutputTokens::Limit(0)),
            "max_output_tokens"
        );
        assert_eq!(
            bad(|c| c.instructions = "x".repeat(MAX_INSTRUCTIONS_CHARS + 1)),
            "instructions"
        );
        assert_eq!(
            bad(|c| c.greeting = Greeting::SpeakFirst {
                opening_line: " ".into()
            }),
            "greeting.opening_line"
        );
        assert_eq!(
            bad(|c| c.transfer_number = Some("555-0100".into())),
            "transfer_number"
        );
    }

    #[test]
    fn transfer_tool_only_with_a_number() {
        let names = |c: &SessionConfig| {
            c.session_object()["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(&SessionConfig::default()), [END_CALL_TOOL]);
        let c = SessionConfig {
            transfer_number: Some("+14155550199".into()),
            ..SessionConfig::default()
        };
        assert_eq!(names(&c), [END_CALL_TOOL, TRANSFER_CALL_TOOL]);
    }

    #[test]
    fn refused_optional_fields_are_left_out() {
        let c = SessionConfig::default();
        let s = c.session_object_without(&[
            OptionalField::Reasoning,
            OptionalField::NoiseReduction,
            OptionalField::Speed,
        ]);
        assert!(s.get("reasoning").is_none());
        assert!(s["audio"]["input"].get("noise_reduction").is_none());
        assert!(s["audio"]["output"].get("speed").is_none());
        assert_eq!(s["audio"]["input"]["format"]["type"], "audio/pcmu");
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert_eq!(c.session_object(), c.session_object_without(&[]));
    }

    #[test]
    fn toml_round_trip() {
        let text = "model = \"gpt-realtime-2\"\nvoice = \"cedar\"\nmax_output_tokens = 512\n\
                    [turn_detection]\ntype = \"semantic_vad\"\neagerness = \"low\"\n\
                    [greeting]\nmode = \"speak_first\"\nopening_line = \"Hi, Verbio here.\"\n";
        let c: SessionConfig = toml::from_str(text).unwrap();
        assert_eq!(c.voice, Voice::Cedar);
        assert_eq!(c.max_output_tokens, MaxOutputTokens::Limit(512));
        assert!(matches!(c.greeting, Greeting::SpeakFirst { .. }));
        assert!(toml::from_str::<SessionConfig>("temperature = 0.8").is_err());
    }
}
