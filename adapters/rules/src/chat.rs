//! The rules chat capability.

use std::sync::Arc;

use async_trait::async_trait;
use merchant_ai::*;
use serde::Deserialize;

/// `[providers.NAME.chat]` options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {}

/// The rules chat capability.
#[derive(Debug)]
pub struct RulesChat {
    name: String,
}

impl RulesChat {
    /// A chat model answering product questions through `searcher`.
    pub fn new(name: &str, _cfg: ChatConfig, _searcher: Option<Arc<dyn Searcher>>) -> Result<Self> {
        Ok(Self { name: name.into() })
    }
}

#[async_trait]
impl ChatModel for RulesChat {
    async fn chat(&self, _req: ChatRequest) -> Result<ChatResponse> {
        Err(Error::unsupported(format!(
            "{}: chat is being built",
            self.name
        )))
    }
    async fn chat_stream(&self, _req: ChatRequest) -> Result<ChatStream> {
        Err(Error::unsupported(format!(
            "{}: chat is being built",
            self.name
        )))
    }
}
