//! Chat templates: the conversation rendered as the prompt text the model was trained on.
//!
//! The family is read from the GGUF `tokenizer.chat_template` (or set in config): ChatML
//! (`<|im_start|>role\n...<|im_end|>\n`, SmolLM2, Qwen2) and Llama-3 headers. A default system
//! prompt written literally in the template (SmolLM2's, Qwen2's) is kept, as the template would.

use merchant_ai::{ContentPart, Error, Message, Result, Role};
use serde::{Deserialize, Serialize};

/// A prompt format.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// Read it from the GGUF metadata (`tokenizer.chat_template`).
    #[default]
    Auto,
    /// `<|im_start|>role\ncontent<|im_end|>\n`.
    Chatml,
    /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    Llama3,
}

/// A resolved template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    pub(crate) kind: TemplateKind,
    /// The system prompt the template inserts when the conversation has none.
    pub(crate) default_system: Option<String>,
    /// Token texts that end the assistant's turn.
    pub(crate) end_markers: Vec<&'static str>,
}

/// The literal default system prompt in a ChatML Jinja template, if it has one.
fn chatml_default_system(src: &str) -> Option<String> {
    let marker = "<|im_start|>system\\n";
    let marker_raw = "<|im_start|>system\n";
    let (start, len) = match src.find(marker) {
        Some(i) => (i, marker.len()),
        None => (src.find(marker_raw)?, marker_raw.len()),
    };
    let rest = &src[start + len..];
    let end = rest.find("<|im_end|>")?;
    let body = &rest[..end];
    // Only a literal text counts (not `' + message['content'] + '`).
    if body.contains('\'') || body.contains('{') || body.contains('+') {
        return None;
    }
    Some(body.replace("\\n", "\n"))
}

impl Template {
    /// Resolves `kind` against the GGUF chat template (if any) and the vocabulary.
    pub(crate) fn resolve(
        kind: TemplateKind,
        metadata: Option<&str>,
        has_token: impl Fn(&str) -> bool,
    ) -> Result<Self> {
        let kind = match kind {
            TemplateKind::Auto => match metadata {
                Some(src) if src.contains("<|im_start|>") => TemplateKind::Chatml,
                Some(src) if src.contains("<|start_header_id|>") => TemplateKind::Llama3,
                _ if has_token("<|im_start|>") => TemplateKind::Chatml,
                _ if has_token("<|start_header_id|>") => TemplateKind::Llama3,
                _ => {
                    return Err(Error::config(
                        "chat.template: the model's chat template is neither ChatML nor Llama-3; \
                         set template = \"chatml\" or \"llama3\"",
                    ));
                }
            },
            k => k,
        };
        let (default_system, end_markers) = match kind {
            TemplateKind::Chatml => (
                metadata.and_then(chatml_default_system),
                vec!["<|im_end|>", "<|endoftext|>"],
            ),
            _ => (None, vec!["<|eot_id|>", "<|end_of_text|>"]),
        };
        for m in ["<|im_start|>", "<|start_header_id|>"] {
            if (kind == TemplateKind::Chatml) == (m == "<|im_start|>") && !has_token(m) {
                return Err(Error::config(format!(
                    "chat.template: the vocabulary has no {m} token for this template"
                )));
            }
        }
        Ok(Template {
            kind,
            default_system,
            end_markers,
        })
    }

    /// Renders the conversation, ending with the opening of the assistant's turn.
    /// `extra_system` (tool and format instructions) is appended to the system prompt.
    /// `neutralise` rewrites special-token text found inside message content.
    pub(crate) fn render(
        &self,
        messages: &[Message],
        extra_system: Option<&str>,
        neutralise: &dyn Fn(&str) -> String,
    ) -> Result<String> {
        let mut turns: Vec<(&'static str, String)> = Vec::with_capacity(messages.len() + 1);
        for (i, m) in messages.iter().enumerate() {
            if m.content
                .iter()
                .any(|p| !matches!(p, ContentPart::Text { .. }))
            {
                return Err(Error::unsupported(format!(
                    "messages[{i}]: the local chat model reads text only (no image parts)"
                )));
            }
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
                Role::Tool => "tool",
                _ => "user",
            };
            let mut text = neutralise(&m.text());
            for call in &m.tool_calls {
                if !text.is_empty() {
                    text.push('\n');
                }
                let args = call.arguments_json().unwrap_or(serde_json::Value::Null);
                let call_json = serde_json::json!({"name": call.name, "arguments": args});
                text.push_str(&format!("<tool_call>\n{call_json}\n</tool_call>"));
            }
            turns.push((role, text));
        }
        let has_system = turns.first().is_some_and(|t| t.0 == "system");
        if !has_system && (self.default_system.is_some() || extra_system.is_some()) {
            turns.insert(
                0,
                ("system", self.default_system.clone().unwrap_or_default()),
            );
        }
        if let Some(extra) = extra_system
            && let Some(first) = turns.first_mut()
        {
            if !first.1.is_empty() {
                first.1.push_str("\n\n");
            }
            first.1.push_str(extra);
        }
        let mut out = String::new();
        match self.kind {
            TemplateKind::Llama3 => {
                out.push_str("<|begin_of_text|>");
                for (role, text) in &turns {
                    out.push_str(&format!(
                        "<|start_header_id|>{role}<|end_header_id|>\n\n{}<|eot_id|>",
                        text.trim()
                    ));
                }
                out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n");
            }
            _ => {
                for (role, text) in &turns {
                    out.push_str(&format!("<|im_start|>{role}\n{text}<|im_end|>\n"));
                }
                out.push_str("<|im_start|>assistant\n");
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOL: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

    fn id(s: &str) -> String {
        s.to_owned()
    }

    #[test]
    fn chatml_with_the_templates_default_system_prompt() {
        let t = Template::resolve(TemplateKind::Auto, Some(SMOL), |_| true).unwrap();
        assert_eq!(t.kind, TemplateKind::Chatml);
        let p = t.render(&[Message::user("Hi")], None, &id).unwrap();
        assert_eq!(
            p,
            "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let p = t
            .render(
                &[Message::system("Be brief."), Message::user("Hi")],
                None,
                &id,
            )
            .unwrap();
        assert!(p.starts_with("<|im_start|>system\nBe brief.<|im_end|>\n"));
    }

    #[test]
    fn extra_instructions_join_the_system_prompt() {
        let t = Template::resolve(TemplateKind::Chatml, None, |_| true).unwrap();
        let p = t
            .render(&[Message::user("Hi")], Some("Answer in JSON."), &id)
            .unwrap();
        assert!(p.starts_with("<|im_start|>system\nAnswer in JSON.<|im_end|>\n"));
    }

    #[test]
    fn images_are_refused_by_name() {
        let t = Template::resolve(TemplateKind::Chatml, None, |_| true).unwrap();
        let e = t
            .render(
                &[Message::user("x").with_image("https://a/b.png")],
                None,
                &id,
            )
            .unwrap_err();
        assert!(e.message().contains("messages[0]"));
    }

    #[test]
    fn unknown_templates_need_config() {
        let e = Template::resolve(TemplateKind::Auto, Some("[INST]"), |_| false).unwrap_err();
        assert!(e.message().contains("chat.template"));
    }
}
