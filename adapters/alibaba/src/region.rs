//! Alibaba Cloud regions: base URLs and jurisdictions.
