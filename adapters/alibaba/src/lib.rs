//! # merchant-ai-alibaba
//!
//! The [merchant-ai](merchant_ai) adapter for Alibaba Cloud.
//!
//! ## Search, recommend and forecast services
//!
//! | kind | capability | service | auth |
//! |---|---|---|---|
//! | `opensearch` | search | [OpenSearch](opensearch) v3 | OpenSearch signature (AccessKey pair) |
//! | `airec` | recommend | [AIRec](airec) 2020-11-26 | ACS3-HMAC-SHA256 (AccessKey pair, optional STS token) |
//! | `pairec` | recommend | [PAI-Rec](pairec) engine | raw EAS token (optional) |
//! | `pai-eas` | forecast | [a model on PAI-EAS](eas), with this crate's JSON contract | raw EAS token |
//!
//! AIRec and PAI-Rec are two kinds rather than one kind with a `service` option: their keys
//! differ (an instance and an AccessKey pair versus an engine URL and a token), and each kind
//! rejects keys it does not know. Secrets are read only from the environment variables named
//! by `*_env` keys (`access_key_id_env`, `access_key_secret_env`, `security_token_env`,
//! `api_key_env`) and never appear in `Debug` output, errors or logs. Every provider declares
//! its `region` and jurisdiction (from the region, or `jurisdiction` to override) and
//! `data_leaves_process = true`. Signing lives in [`sign`]; error mapping in [`service`].

#![warn(missing_docs)]

pub mod airec;
pub mod dashscope;
pub mod eas;
pub mod opensearch;
pub mod pairec;
pub mod region;
pub mod service;
pub mod sign;

pub use airec::factory as airec_factory;
pub use dashscope::factory as dashscope_factory;
pub use eas::factory as eas_factory;
pub use opensearch::factory as opensearch_factory;
pub use pairec::factory as pairec_factory;
