//! An in-process vector index: exact cosine top-k over L2-normalized embeddings.
//!
//! Adapters that produce embeddings (remote embedding APIs, a local model) share this index, so
//! every one of them ranks the same way. It is exact brute force, dependency-free and
//! single-threaded, sized for catalogs up to a few hundred thousand products:
//!
//! - all vectors live in one contiguous row-major `Vec<f32>`; a search streams through it once
//!   with an unrolled dot product the compiler vectorizes, keeping the best `k` rows in a
//!   bounded heap, and allocates nothing per scored row;
//! - vectors are L2-normalized on insert (and the query on search), so a dot product is the
//!   cosine similarity, in `[-1, 1]`;
//! - ties are broken by product id (ascending), so results are deterministic whatever the
//!   insertion order;
//! - removal swaps the last row into the hole (`O(dimension)`), with an id-to-row map.
//!
//! Locking: [`VectorIndex`] is a plain value (`&mut self` to write, `&self` to search), so a
//! caller that already holds its own lock pays for no second one. [`SharedVectorIndex`] wraps
//! it in a [`RwLock`] for the common case: many concurrent searches, rare
//! writes. A search holds the read lock for its whole scan.
//!
//! ```
//! use merchant_ai::vector::VectorIndex;
//! use merchant_ai::ProductId;
//!
//! let mut index = VectorIndex::new();
//! index.upsert(ProductId::new("a"), &[1.0, 0.0, 0.0])?;
//! index.upsert(ProductId::new("b"), &[0.6, 0.8, 0.0])?;
//! index.upsert(ProductId::new("c"), &[0.0, 0.0, 2.0])?;
//! let hits = index.search(&[1.0, 1.0, 0.0], 2)?;
//! assert_eq!(hits[0].id.as_str(), "b");
//! assert_eq!(hits[1].id.as_str(), "a");
//! // Only ids the predicate accepts:
//! let hits = index.search_filtered(&[1.0, 1.0, 0.0], 2, |id| id.as_str() != "b")?;
//! assert_eq!(hits[0].id.as_str(), "a");
//! # Ok::<(), merchant_ai::Error>(())
//! ```

use std::collections::HashMap;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::error::{Error, Result};
use crate::types::ProductId;

/// One search result: a product and its cosine similarity to the query.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub struct VectorHit {
    /// The product.
    pub id: ProductId,
    /// Cosine similarity to the query, in `[-1, 1]`; higher is closer.
    pub score: f32,
}

/// An exact cosine-similarity index of one fixed dimension. See the [module docs](self).
#[derive(Clone, Default)]
pub struct VectorIndex {
    /// 0 until fixed by [`with_dimension`](Self::with_dimension) or the first insert.
    dim: usize,
    /// Row-major, `ids.len() * dim` values, each row of unit length.
    data: Vec<f32>,
    /// The id of each row.
    ids: Vec<ProductId>,
    /// The row of each id.
    rows: HashMap<ProductId, usize>,
}

impl std::fmt::Debug for VectorIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorIndex")
            .field("dimension", &self.dimension())
            .field("len", &self.len())
            .finish()
    }
}

impl VectorIndex {
    /// An empty index whose dimension the first insert sets.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty index of a fixed dimension; `InvalidRequest` if `dimension` is 0.
    pub fn with_dimension(dimension: usize) -> Result<Self> {
        if dimension == 0 {
            return Err(Error::invalid_request(
                "vector index: the dimension must be at least 1",
            ));
        }
        Ok(VectorIndex {
            dim: dimension,
            ..Self::default()
        })
    }

    /// The dimension, once set.
    pub fn dimension(&self) -> Option<usize> {
        (self.dim > 0).then_some(self.dim)
    }

    /// Number of vectors stored.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether no vector is stored.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Whether `id` has a vector.
    pub fn contains(&self, id: &ProductId) -> bool {
        self.rows.contains_key(id)
    }

    /// The stored (normalized) vector of `id`.
    pub fn get(&self, id: &ProductId) -> Option<&[f32]> {
        let row = *self.rows.get(id)?;
        self.data.get(row * self.dim..(row + 1) * self.dim)
    }

    /// The stored ids, in storage order (which changes on removal).
    pub fn ids(&self) -> &[ProductId] {
        &self.ids
    }

    /// Removes every vector; the dimension stays.
    pub fn clear(&mut self) {
        self.data.clear();
        self.ids.clear();
        self.rows.clear();
    }

    /// Reserves room for `additional` more vectors (once the dimension is known).
    pub fn reserve(&mut self, additional: usize) {
        self.ids.reserve(additional);
        self.rows.reserve(additional);
        self.data.reserve(additional.saturating_mul(self.dim));
    }

    /// Adds or replaces the vector of `id`, normalized to unit length.
    ///
    /// `InvalidRequest` (naming the id) for a dimension other than the index's, an empty or
    /// all-zero vector, or a value that is not finite; the index is unchanged then.
    pub fn upsert(&mut self, id: ProductId, vector: &[f32]) -> Result<()> {
        let dim = if self.dim == 0 {
            vector.len()
        } else {
            self.dim
        };
        let inv = check_vector(vector, dim, || format!("vector for product {id}"))?;
        self.dim = dim;
        match self.rows.get(&id) {
            Some(&row) => {
                let dst = &mut self.data[row * dim..(row + 1) * dim];
                for (d, s) in dst.iter_mut().zip(vector) {
                    *d = (f64::from(*s) * inv) as f32;
                }
            }
            None => {
                self.data
                    .extend(vector.iter().map(|v| (f64::from(*v) * inv) as f32));
                self.rows.insert(id.clone(), self.ids.len());
                self.ids.push(id);
            }
        }
        Ok(())
    }

    /// Removes the vector of `id`; returns whether it was there.
    pub fn remove(&mut self, id: &ProductId) -> bool {
        let Some(row) = self.rows.remove(id) else {
            return false;
        };
        let dim = self.dim;
        let last = self.ids.len() - 1;
        if row != last {
            self.data
                .copy_within(last * dim..(last + 1) * dim, row * dim);
            let moved = self.ids[last].clone();
            self.rows.insert(moved, row);
        }
        self.ids.swap_remove(row);
        self.data.truncate(last * dim);
        true
    }

    /// The `k` stored vectors most similar to `query` (cosine), best first, ties by id.
    ///
    /// `InvalidRequest` for a query of the wrong dimension, all zeros, or with a value that is
    /// not finite. An empty index answers with no hits.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<VectorHit>> {
        self.search_filtered(query, k, |_| true)
    }

    /// Like [`search`](Self::search), keeping only ids `filter` accepts (e.g.
    /// `|id| catalog.get(id).is_some_and(|p| filters.matches(p))`).
    ///
    /// The predicate is called only for rows that would enter the current top `k`, so an
    /// expensive filter costs little; it must be a pure function of the id.
    pub fn search_filtered<F>(
        &self,
        query: &[f32],
        k: usize,
        mut filter: F,
    ) -> Result<Vec<VectorHit>>
    where
        F: FnMut(&ProductId) -> bool,
    {
        let dim = if self.dim == 0 { query.len() } else { self.dim };
        let inv = check_vector(query, dim, || "query vector".to_owned())?;
        if k == 0 || self.ids.is_empty() {
            return Ok(Vec::new());
        }
        let q: Vec<f32> = query.iter().map(|v| (f64::from(*v) * inv) as f32).collect();
        let mut top = TopK::new(k.min(self.ids.len()));
        for (row, v) in self.data.chunks_exact(self.dim).enumerate() {
            let s = dot(&q, v);
            if top.admits(s, row, &self.ids) && filter(&self.ids[row]) {
                top.push(s, row, &self.ids);
            }
        }
        Ok(top
            .into_sorted(&self.ids)
            .into_iter()
            .map(|(score, row)| VectorHit {
                id: self.ids[row].clone(),
                score,
            })
            .collect())
    }
}

/// Checks a vector's dimension and values; returns `1 / ‖v‖`.
fn check_vector(v: &[f32], dim: usize, what: impl Fn() -> String) -> Result<f64> {
    if v.len() != dim {
        return Err(Error::invalid_request(format!(
            "{}: dimension {} does not match the index dimension {dim}",
            what(),
            v.len()
        )));
    }
    if dim == 0 {
        return Err(Error::invalid_request(format!("{}: is empty", what())));
    }
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(Error::invalid_request(format!(
            "{}: value at position {i} is not finite",
            what()
        )));
    }
    // Accumulate in f64 so huge or tiny components neither overflow nor underflow.
    let norm = v
        .iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt();
    let inv = 1.0 / norm;
    if norm == 0.0 || !inv.is_finite() {
        return Err(Error::invalid_request(format!(
            "{}: a zero vector has no direction",
            what()
        )));
    }
    Ok(inv)
}

/// Normalizes `v` to unit length in place; `InvalidRequest` for an empty or zero vector or a
/// value that is not finite.
pub fn normalize(v: &mut [f32]) -> Result<()> {
    let inv = check_vector(v, v.len(), || "vector".to_owned())?;
    for x in v.iter_mut() {
        *x = (f64::from(*x) * inv) as f32;
    }
    Ok(())
}

/// The dot product of two slices (over the shorter length). With unit vectors it is their
/// cosine similarity.
///
/// Sixteen independent accumulators let the compiler keep several SIMD lanes busy; the
/// summation order is fixed, so the result is the same on every run.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const W: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; W];
    let ca = a.chunks_exact(W);
    let cb = b.chunks_exact(W);
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..W {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0f32;
    for (x, y) in ra.iter().zip(rb) {
        tail += x * y;
    }
    let mut w = W;
    while w > 1 {
        w /= 2;
        for i in 0..w {
            acc[i] += acc[i + w];
        }
    }
    acc[0] + tail
}

/// A bounded min-heap of `(score, row)`: its root is the worst kept entry.
struct TopK {
    k: usize,
    heap: Vec<(f32, usize)>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            heap: Vec::with_capacity(k),
        }
    }

    /// Whether `a` ranks below `b`: lower score, or equal score and a larger id.
    #[inline]
    fn worse(a: (f32, usize), b: (f32, usize), ids: &[ProductId]) -> bool {
        a.0 < b.0 || (a.0 == b.0 && ids[a.1] > ids[b.1])
    }

    /// Whether a row with this score would enter the heap now.
    #[inline]
    fn admits(&self, s: f32, row: usize, ids: &[ProductId]) -> bool {
        self.heap.len() < self.k
            || match self.heap.first() {
                Some(&root) => s > root.0 || (s == root.0 && Self::worse(root, (s, row), ids)),
                None => false,
            }
    }

    fn push(&mut self, s: f32, row: usize, ids: &[ProductId]) {
        if self.heap.len() < self.k {
            self.heap.push((s, row));
            let mut i = self.heap.len() - 1;
            while i > 0 {
                let p = (i - 1) / 2;
                if Self::worse(self.heap[i], self.heap[p], ids) {
                    self.heap.swap(i, p);
                    i = p;
                } else {
                    break;
                }
            }
        } else if !self.heap.is_empty() {
            self.heap[0] = (s, row);
            let n = self.heap.len();
            let mut i = 0;
            loop {
                let (l, r) = (2 * i + 1, 2 * i + 2);
                let mut m = i;
                if l < n && Self::worse(self.heap[l], self.heap[m], ids) {
                    m = l;
                }
                if r < n && Self::worse(self.heap[r], self.heap[m], ids) {
                    m = r;
                }
                if m == i {
                    break;
                }
                self.heap.swap(i, m);
                i = m;
            }
        }
    }

    /// Best first, ties by ascending id.
    fn into_sorted(mut self, ids: &[ProductId]) -> Vec<(f32, usize)> {
        self.heap
            .sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| ids[a.1].cmp(&ids[b.1])));
        self.heap
    }
}

/// A [`VectorIndex`] behind a [`RwLock`]: searches share the read lock, writes take the write
/// lock. A poisoned lock (a panic while writing, which the index itself never does) is
/// recovered, since every write leaves the index consistent before it can fail.
#[derive(Debug, Default)]
pub struct SharedVectorIndex {
    inner: RwLock<VectorIndex>,
}

impl SharedVectorIndex {
    /// Wraps an index.
    pub fn new(index: VectorIndex) -> Self {
        SharedVectorIndex {
            inner: RwLock::new(index),
        }
    }

    /// The read guard, for several reads under one lock.
    pub fn read(&self) -> RwLockReadGuard<'_, VectorIndex> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The write guard, for several writes under one lock.
    pub fn write(&self) -> RwLockWriteGuard<'_, VectorIndex> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// See [`VectorIndex::upsert`].
    pub fn upsert(&self, id: ProductId, vector: &[f32]) -> Result<()> {
        self.write().upsert(id, vector)
    }

    /// See [`VectorIndex::remove`].
    pub fn remove(&self, id: &ProductId) -> bool {
        self.write().remove(id)
    }

    /// See [`VectorIndex::search`].
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<VectorHit>> {
        self.read().search(query, k)
    }

    /// See [`VectorIndex::search_filtered`].
    pub fn search_filtered<F>(&self, query: &[f32], k: usize, filter: F) -> Result<Vec<VectorHit>>
    where
        F: FnMut(&ProductId) -> bool,
    {
        self.read().search_filtered(query, k, filter)
    }

    /// See [`VectorIndex::len`].
    pub fn len(&self) -> usize {
        self.read().len()
    }

    /// See [`VectorIndex::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.read().is_empty()
    }

    /// See [`VectorIndex::dimension`].
    pub fn dimension(&self) -> Option<usize> {
        self.read().dimension()
    }
}
