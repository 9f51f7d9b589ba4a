//! The in-process vector index: normalization, validation, exact top-k, filters, writes, ties.

use merchant_ai::vector::{SharedVectorIndex, VectorIndex, dot, normalize};
use merchant_ai::{ErrorKind, ProductId};

fn id(s: &str) -> ProductId {
    ProductId::new(s)
}

/// xorshift64*: a tiny seeded generator for reproducible random data.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn f32(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn vec(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.f32()).collect()
    }
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

#[test]
fn vectors_are_normalized_on_insert() {
    let mut ix = VectorIndex::new();
    ix.upsert(id("a"), &[3.0, 4.0]).unwrap();
    let v = ix.get(&id("a")).unwrap();
    assert!((v[0] - 0.6).abs() < 1e-6 && (v[1] - 0.8).abs() < 1e-6);
    let mut rng = Rng(7);
    for i in 0..50 {
        let raw: Vec<f32> = rng.vec(37).iter().map(|x| x * 1000.0).collect();
        ix = if i == 0 { VectorIndex::new() } else { ix };
        ix.upsert(id(&format!("r{i}")), &raw).unwrap();
        assert!((norm(ix.get(&id(&format!("r{i}"))).unwrap()) - 1.0).abs() < 1e-5);
    }
    // tiny and huge magnitudes normalize too
    let mut ix = VectorIndex::new();
    ix.upsert(id("tiny"), &[1e-30, 0.0, 1e-30]).unwrap();
    ix.upsert(id("huge"), &[3e38, 3e38, 0.0]).unwrap();
    assert!((norm(ix.get(&id("tiny")).unwrap()) - 1.0).abs() < 1e-5);
    assert!((norm(ix.get(&id("huge")).unwrap()) - 1.0).abs() < 1e-5);
    // the search score is the cosine, whatever the query's length
    let hits = ix.search(&[0.0, 0.0, 5.0], 2).unwrap();
    assert_eq!(hits[0].id, id("tiny"));
    assert!((hits[0].score - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    let mut v = vec![0.0, 2.0];
    normalize(&mut v).unwrap();
    assert_eq!(v, vec![0.0, 1.0]);
}

#[test]
fn dimension_is_fixed_and_mismatches_name_the_id_and_both_dimensions() {
    let mut ix = VectorIndex::new();
    assert_eq!(ix.dimension(), None);
    ix.upsert(id("a"), &[1.0, 0.0, 0.0]).unwrap();
    assert_eq!(ix.dimension(), Some(3));
    let e = ix.upsert(id("sku-9"), &[1.0, 0.0]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains("sku-9"), "{}", e.message());
    assert!(e.message().contains("dimension 2"), "{}", e.message());
    assert!(e.message().contains("dimension 3"), "{}", e.message());
    assert_eq!(ix.len(), 1);
    let e = ix.search(&[1.0; 4], 3).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidRequest);
    assert!(e.message().contains('4') && e.message().contains('3'));

    let mut fixed = VectorIndex::with_dimension(2).unwrap();
    assert_eq!(fixed.dimension(), Some(2));
    assert!(fixed.upsert(id("x"), &[1.0, 2.0, 3.0]).is_err());
    assert!(fixed.is_empty());
    // an empty index with a fixed dimension still checks the query
    assert!(fixed.search(&[1.0, 2.0, 3.0], 1).is_err());
    assert!(fixed.search(&[1.0, 2.0], 1).unwrap().is_empty());
    assert_eq!(
        VectorIndex::with_dimension(0).unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
}

#[test]
fn zero_empty_and_non_finite_vectors_are_rejected() {
    let mut ix = VectorIndex::new();
    for bad in [
        vec![0.0, 0.0],
        vec![],
        vec![f32::NAN, 1.0],
        vec![1.0, f32::INFINITY],
    ] {
        let e = ix.upsert(id("z"), &bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidRequest);
        assert!(e.message().contains("product z"), "{}", e.message());
    }
    assert!(ix.is_empty());
    assert_eq!(
        ix.dimension(),
        None,
        "a rejected vector does not fix the dimension"
    );
    ix.upsert(id("a"), &[1.0, 0.0]).unwrap();
    assert!(ix.search(&[0.0, 0.0], 1).is_err());
    assert!(ix.search(&[f32::NAN, 0.0], 1).is_err());
    assert!(normalize(&mut [0.0, 0.0]).is_err());
    // replacing with a zero vector leaves the old one in place
    assert!(ix.upsert(id("a"), &[0.0, 0.0]).is_err());
    assert_eq!(ix.get(&id("a")).unwrap(), &[1.0, 0.0]);
}

#[test]
fn top_k_is_exact_against_a_naive_sort() {
    let mut rng = Rng(0x5EED);
    for &(n, dim) in &[(1usize, 1usize), (7, 3), (300, 17), (1000, 64), (513, 384)] {
        let mut ix = VectorIndex::new();
        let raw: Vec<Vec<f32>> = (0..n).map(|_| rng.vec(dim)).collect();
        for (i, v) in raw.iter().enumerate() {
            ix.upsert(id(&format!("p{i:05}")), v).unwrap();
        }
        for _ in 0..10 {
            let q = rng.vec(dim);
            let qn = norm(&q);
            // reference in f64 from the raw vectors
            let mut naive: Vec<(f64, String)> = raw
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let d: f64 = v
                        .iter()
                        .zip(&q)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum();
                    (d / (norm(v) * qn), format!("p{i:05}"))
                })
                .collect();
            naive.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            for k in [1, 5, 10, n, n + 3] {
                let hits = ix.search(&q, k).unwrap();
                assert_eq!(hits.len(), k.min(n));
                for (h, (s, want)) in hits.iter().zip(&naive) {
                    assert!((f64::from(h.score) - s).abs() < 1e-5, "{} vs {s}", h.score);
                    // ids agree unless two reference scores are closer than f32 rounding
                    if h.id.as_str() != want {
                        let theirs = naive.iter().find(|(_, i)| i == h.id.as_str()).unwrap().0;
                        assert!(
                            (theirs - s).abs() < 1e-5,
                            "{} for {want} at n={n} dim={dim}",
                            h.id
                        );
                    }
                }
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
            }
        }
    }
}

#[test]
fn filters_keep_only_accepted_ids_and_still_return_k() {
    let mut rng = Rng(99);
    let mut ix = VectorIndex::with_dimension(8).unwrap();
    for i in 0..200 {
        ix.upsert(id(&format!("p{i:03}")), &rng.vec(8)).unwrap();
    }
    let q = rng.vec(8);
    let even = |p: &ProductId| p.as_str()[1..].parse::<u32>().unwrap() % 2 == 0;
    let hits = ix.search_filtered(&q, 10, even).unwrap();
    assert_eq!(hits.len(), 10);
    assert!(hits.iter().all(|h| even(&h.id)));
    let all = ix.search(&q, 200).unwrap();
    let expected: Vec<_> = all
        .iter()
        .filter(|h| even(&h.id))
        .take(10)
        .cloned()
        .collect();
    assert_eq!(hits, expected);
    assert!(ix.search_filtered(&q, 10, |_| false).unwrap().is_empty());
    let two = ix
        .search_filtered(&q, 10, |p| p.as_str() == "p007" || p.as_str() == "p150")
        .unwrap();
    assert_eq!(two.len(), 2);
}

#[test]
fn upsert_replaces_and_remove_deletes() {
    let mut ix = VectorIndex::new();
    ix.upsert(id("a"), &[1.0, 0.0]).unwrap();
    ix.upsert(id("b"), &[0.0, 1.0]).unwrap();
    ix.upsert(id("c"), &[-1.0, 0.0]).unwrap();
    assert_eq!(ix.search(&[1.0, 0.0], 1).unwrap()[0].id, id("a"));
    ix.upsert(id("c"), &[2.0, 0.1]).unwrap();
    assert_eq!(ix.len(), 3);
    assert_eq!(ix.search(&[0.0, 1.0], 3).unwrap()[0].id, id("b"));
    let top: Vec<_> = ix
        .search(&[1.0, 0.1], 3)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(top[0], id("c"));

    // remove from the middle, the end, an unknown id
    assert!(ix.remove(&id("a")));
    assert!(!ix.remove(&id("a")));
    assert!(!ix.remove(&id("nope")));
    assert_eq!(ix.len(), 2);
    assert!(!ix.contains(&id("a")));
    let ids: Vec<_> = ix
        .search(&[1.0, 0.0], 10)
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .collect();
    assert_eq!(ids, vec![id("c"), id("b")]);
    // the row moved by swap-remove is still addressable and replaceable
    ix.upsert(id("c"), &[0.0, -1.0]).unwrap();
    assert_eq!(ix.get(&id("c")).unwrap(), &[0.0, -1.0]);
    assert!(ix.remove(&id("c")));
    assert!(ix.remove(&id("b")));
    assert!(ix.is_empty());
    assert!(ix.search(&[1.0, 0.0], 5).unwrap().is_empty());
    ix.upsert(id("d"), &[0.0, 3.0]).unwrap();
    assert_eq!(ix.ids(), &[id("d")]);

    // many random removals keep the index consistent
    let mut rng = Rng(3);
    let mut ix = VectorIndex::new();
    for i in 0..100 {
        ix.upsert(id(&format!("p{i:03}")), &rng.vec(5)).unwrap();
    }
    for i in (0..100).step_by(3) {
        assert!(ix.remove(&id(&format!("p{i:03}"))));
    }
    assert_eq!(ix.len(), 66);
    for i in 0..100 {
        let present = ix.contains(&id(&format!("p{i:03}")));
        assert_eq!(present, i % 3 != 0);
        if let Some(v) = ix.get(&id(&format!("p{i:03}"))) {
            // the row holds this id's own vector: its best match is itself
            let best = ix.search(v, 1).unwrap();
            assert!((best[0].score - 1.0).abs() < 1e-5);
            assert!((dot(v, ix.get(&best[0].id).unwrap()) - 1.0).abs() < 1e-5);
        }
    }
}

#[test]
fn ties_break_by_id_whatever_the_insertion_order() {
    let names = ["m", "b", "z", "a", "k", "c"];
    let mut fwd = VectorIndex::new();
    let mut rev = VectorIndex::new();
    for n in names {
        fwd.upsert(id(n), &[1.0, 1.0]).unwrap();
    }
    for n in names.iter().rev() {
        rev.upsert(id(n), &[2.0, 2.0]).unwrap();
    }
    fwd.upsert(id("far"), &[-1.0, 0.0]).unwrap();
    for ix in [&fwd, &rev] {
        let got: Vec<_> = ix
            .search(&[1.0, 1.0], 3)
            .unwrap()
            .into_iter()
            .map(|h| h.id.to_string())
            .collect();
        assert_eq!(got, vec!["a", "b", "c"]);
        let all: Vec<_> = ix
            .search(&[1.0, 1.0], 6)
            .unwrap()
            .into_iter()
            .map(|h| h.id.to_string())
            .collect();
        assert_eq!(all, vec!["a", "b", "c", "k", "m", "z"]);
    }
}

#[test]
fn empty_index_and_k_zero() {
    let ix = VectorIndex::new();
    assert!(ix.search(&[1.0, 2.0], 10).unwrap().is_empty());
    assert!(
        ix.search(&[0.0], 10).is_err(),
        "a zero query is still refused"
    );
    let mut ix = VectorIndex::new();
    ix.upsert(id("a"), &[1.0]).unwrap();
    assert!(ix.search(&[1.0], 0).unwrap().is_empty());
    ix.clear();
    assert!(ix.is_empty());
    assert_eq!(ix.dimension(), Some(1));
    assert!(format!("{ix:?}").contains("len: 0"));
}

#[test]
fn shared_index_serves_concurrent_readers() {
    let shared = std::sync::Arc::new(SharedVectorIndex::default());
    let mut rng = Rng(11);
    for i in 0..500 {
        shared
            .upsert(id(&format!("p{i:03}")), &rng.vec(16))
            .unwrap();
    }
    let q = rng.vec(16);
    let expected = shared.search(&q, 5).unwrap();
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let s = shared.clone();
            let q = q.clone();
            std::thread::spawn(move || s.search(&q, 5).unwrap())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), expected);
    }
    assert!(shared.remove(&expected[0].id));
    assert_eq!(shared.len(), 499);
    assert_eq!(shared.dimension(), Some(16));
    assert!(!shared.is_empty());
    assert_eq!(
        shared.search_filtered(&q, 5, |_| true).unwrap()[..4],
        expected[1..]
    );
}
