//! Work split over the machine's cores with scoped threads.

/// The cores to use.
pub fn cores() -> usize {
    // Asked once: on Linux each call reads the cgroup files (open, read,
    // close), which cost a third of a one-row prediction request.
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// `f` of every item, in order; the items are cut into one contiguous
/// share per core.
pub fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = cores().min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(threads))
            .map(|share| s.spawn(move || share.iter().map(f).collect::<Vec<R>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
    })
}

/// `f(start, end)` of `shares` contiguous ranges cutting `0..n`, in order,
/// over the cores when `parallel`. The ranges depend on `n` and `shares`
/// alone, never on the cores: sums of floats reduced from them in order
/// are the same on every machine (a model trained on 1 core or 16 is the
/// same model).
pub fn shares<T: Send>(n: usize, shares: usize, parallel: bool, f: impl Fn(usize, usize) -> T + Sync) -> Vec<T> {
    let shares = shares.max(1);
    let per = n.div_ceil(shares).max(1);
    let ranges: Vec<(usize, usize)> = (0..shares).map(|k| ((k * per).min(n), ((k + 1) * per).min(n))).collect();
    if parallel { map(&ranges, |&(a, b)| f(a, b)) } else { ranges.iter().map(|&(a, b)| f(a, b)).collect() }
}

/// Runs `f(first_row, rows)` over `data`, a row-major table of `width`
/// values per row: on one contiguous share of whole rows per core when
/// `parallel`, else once over everything. The first error is returned.
pub fn rows_mut<T: Send, E: Send>(
    data: &mut [T],
    width: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) -> Result<(), E> + Sync,
) -> Result<(), E> {
    if !parallel || width == 0 || data.is_empty() {
        return f(0, data);
    }
    let threads = cores();
    if threads <= 1 {
        return f(0, data);
    }
    let per = (data.len() / width).div_ceil(threads);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> =
            data.chunks_mut(per * width).enumerate().map(|(t, part)| s.spawn(move || f(t * per, part))).collect();
        handles.into_iter().try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn shares_cut_the_range_whatever_the_cores() {
        let got = super::shares(10, 4, true, |a, b| (a, b));
        assert_eq!(got, [(0, 3), (3, 6), (6, 9), (9, 10)]);
        assert_eq!(super::shares(10, 4, false, |a, b| (a, b)), got);
        assert_eq!(super::shares(2, 4, true, |a, b| b - a), [1, 1, 0, 0]);
    }

    #[test]
    fn map_keeps_the_order() {
        let items: Vec<usize> = (0..1001).collect();
        assert_eq!(super::map(&items, |i| i * 2), items.iter().map(|i| i * 2).collect::<Vec<_>>());
        assert!(super::map(&[] as &[usize], |i| *i).is_empty());
    }

    #[test]
    fn row_shares_start_at_their_first_row_and_pass_errors_on() {
        let mut data = vec![0usize; 1001 * 3];
        let ok: Result<(), ()> = super::rows_mut(&mut data, 3, true, |first, part| {
            for (i, row) in part.chunks_mut(3).enumerate() {
                row.fill(first + i);
            }
            Ok(())
        });
        assert!(ok.is_ok());
        assert!(data.chunks(3).enumerate().all(|(i, row)| row.iter().all(|&v| v == i)));
        let failed = super::rows_mut(&mut data, 3, true, |first, _| if first > 0 { Err(first) } else { Ok(()) });
        assert!(super::cores() == 1 || failed.is_err());
    }
}
