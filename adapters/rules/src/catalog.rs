//! The product catalog shared by the rules provider's capabilities.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use merchant_ai::{Error, Event, Product, ProductId, Result};

/// Products by id, shared between search, recommend and chat of one provider.
#[derive(Debug, Default)]
pub struct Catalog {
    products: RwLock<BTreeMap<ProductId, Arc<Product>>>,
}

impl Catalog {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces products.
    pub fn upsert(&self, products: impl IntoIterator<Item = Product>) {
        let mut m = self.products.write().expect("catalog lock");
        for p in products {
            m.insert(p.id.clone(), Arc::new(p));
        }
    }

    /// Removes products; returns how many existed.
    pub fn remove(&self, ids: &[ProductId]) -> usize {
        let mut m = self.products.write().expect("catalog lock");
        ids.iter().filter(|id| m.remove(*id).is_some()).count()
    }

    /// One product.
    pub fn get(&self, id: &ProductId) -> Option<Arc<Product>> {
        self.products.read().expect("catalog lock").get(id).cloned()
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.products.read().expect("catalog lock").len()
    }

    /// Whether the catalog is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A snapshot of all products, in id order.
    pub fn all(&self) -> Vec<Arc<Product>> {
        self.products
            .read()
            .expect("catalog lock")
            .values()
            .cloned()
            .collect()
    }
}

/// Reads JSON lines of `T` from a file; the error names the file and line.
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::config(format!("cannot read {}: {e}", path.display())))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v = serde_json::from_str(line)
            .map_err(|e| Error::config(format!("{} line {}: {e}", path.display(), i + 1)))?;
        out.push(v);
    }
    Ok(out)
}

/// Reads products as JSON lines.
pub fn read_products(path: &Path) -> Result<Vec<Product>> {
    read_jsonl(path)
}

/// Reads events as JSON lines.
pub fn read_events(path: &Path) -> Result<Vec<Event>> {
    read_jsonl(path)
}
