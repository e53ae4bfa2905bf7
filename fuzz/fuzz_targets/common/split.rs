//! Cutting a fuzz input's byte stream into the pieces a socket might deliver it in, shared
//! by the targets that check chunked feeding against feeding at once.

/// `stream` cut at the given piece sizes (each clamped to what is left), in order; whatever
/// is left after them is the last piece.
pub fn split_at_sizes<'a>(stream: &'a [u8], sizes: &[u8]) -> Vec<&'a [u8]> {
    let mut rest = stream;
    let mut pieces = Vec::with_capacity(sizes.len() + 1);
    for &size in sizes {
        let (piece, tail) = rest.split_at(usize::from(size).min(rest.len()));
        pieces.push(piece);
        rest = tail;
    }
    pieces.push(rest);
    pieces
}
