//! Request signing: ACS3-HMAC-SHA256, the legacy ROA HMAC-SHA1 and OpenSearch's scheme.
