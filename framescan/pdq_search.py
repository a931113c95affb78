"""Radius search over packed PDQ hashes (``(N, 4)`` uint64, ``framescan.pdq``): every pair of a
query hash and a bank hash within ``r`` bits, by brute force or by multi-index hashing.

* brute force: a Numba popcount scan over the bank (bank-major, the queries of one call
  in the inner loop, so the bank is streamed from memory once per call);
* ``MultiIndex`` (multi-index hashing): the 256 bits are cut into 16 chunks of 16 bits. Two
  hashes within distance ``r`` differ in fewer than ``r // 16 + 1`` bits in at least one chunk
  (if every chunk differed in ``r // 16 + 1`` or more bits the total would exceed ``r``), so
  looking up each query chunk and its neighbours within ``r // 16`` bits -- for ``r = 31``, the
  chunk itself and its 16 one-bit neighbours -- in a per-chunk table finds every candidate;
  each candidate's full distance is then checked. Exact (no false negatives), for any radius
  up to 47; beyond that ``MultiIndex.search`` falls back to brute force.

``framescan.banks.BankMatcher`` chooses between them by bank size.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from framescan import pdq
from framescan._jit import kernel
from framescan.vpdq import DISTANCE_THRESHOLD

log = logging.getLogger(__name__)

CHUNK_BITS = 16  # multi-index hashing: 16 chunks of 16 bits
NUM_CHUNKS = pdq.HASH_BITS // CHUNK_BITS
CHUNKS_PER_WORD = 64 // CHUNK_BITS
CHUNK_VALUES = 1 << CHUNK_BITS
MAX_PROBE_RADIUS = 2  # per-chunk neighbourhood the index enumerates (1 + 16 + 120 probes)
INITIAL_RESULT_CAPACITY = 4096  # result buffers grow (and the scan reruns) when exceeded


# ---------------------------------------------------------------------------------------------
# Kernels (NumPy twins in tests/naive_pdq.py: radius_search, chunk_values).


@kernel()
def _brute_radius_search(queries, bank, radius, out_q, out_b, out_d):  # pragma: no cover - compiled
    """Every (query, bank) pair within ``radius``; returns the pair count (may exceed capacity,
    in which case only the first ``len(out_q)`` pairs are written)."""
    cap = out_q.shape[0]
    nq = queries.shape[0]
    count = 0
    for j in range(bank.shape[0]):
        b0 = bank[j, 0]
        b1 = bank[j, 1]
        b2 = bank[j, 2]
        b3 = bank[j, 3]
        for i in range(nq):
            # Half the words first: random pairs are ~64 bits apart there already, so most
            # pairs stop here (exact: the distance only grows with more words).
            d = pdq._popcount64(queries[i, 0] ^ b0) + pdq._popcount64(queries[i, 1] ^ b1)
            if d > radius:
                continue
            d += pdq._popcount64(queries[i, 2] ^ b2) + pdq._popcount64(queries[i, 3] ^ b3)
            if d <= radius:  # written here, not by _record: a call in this loop cost ~10%
                if count < cap:
                    out_q[count] = i
                    out_b[count] = j
                    out_d[count] = d
                count += 1
    return count


# Called per pair found with array arguments: IR inlining avoids per-call refcounting.
@kernel(inline="always")
def _record(count, i, j, d, out_q, out_b, out_d):  # pragma: no cover - compiled
    """Write pair ``count`` (query ``i``, bank hash ``j``, distance ``d``) if the buffers have
    room (else the caller runs again with room for all); returns the new pair count."""
    if count < out_q.shape[0]:
        out_q[count] = i
        out_b[count] = j
        out_d[count] = d
    return count + 1


# Called per hash and chunk with an array argument: IR inlining avoids per-call refcounting.
@kernel(inline="always")
def _chunk(h, c):  # pragma: no cover - compiled
    """16-bit chunk ``c`` (0 = most significant) of hash row ``h``."""
    shift = np.uint64(64 - CHUNK_BITS * (c % CHUNKS_PER_WORD + 1))
    return int((h[c // CHUNKS_PER_WORD] >> shift) & np.uint64(CHUNK_VALUES - 1))


@kernel()
def _chunk_values(hashes, out):  # pragma: no cover - compiled
    """``out[c, j]`` = chunk ``c`` of ``hashes[j]``."""
    for j in range(hashes.shape[0]):
        for c in range(NUM_CHUNKS):
            out[c, j] = _chunk(hashes[j], c)


@kernel()
def _build_postings(chunks, orders, starts):  # pragma: no cover - compiled
    """Per chunk, a stable counting sort of the bank by chunk value: ``orders[c]`` lists bank
    indices by value, ``starts[c, v]:starts[c, v + 1]`` is the run of value ``v``."""
    n_chunks, m = chunks.shape
    for c in range(n_chunks):
        for v in range(starts.shape[1]):
            starts[c, v] = 0
        for j in range(m):
            starts[c, chunks[c, j] + 1] += 1
        for v in range(1, starts.shape[1]):
            starts[c, v] += starts[c, v - 1]
        fill = starts[c, :-1].copy()
        for j in range(m):
            v = chunks[c, j]
            orders[c, fill[v]] = j
            fill[v] += 1


@kernel()
def _mih_radius_search(
    queries, bank, orders, starts, radius, probes, seen, gen0, out_q, out_b, out_d
):  # pragma: no cover - compiled
    """Multi-index lookup: candidates share a chunk up to one of the XOR masks in ``probes``,
    then their full distance is checked.

    ``seen[j] == gen0 + i`` marks bank hash ``j`` as already checked for query ``i`` (found via
    another chunk); the caller advances ``gen0`` by the number of queries after each call.
    """
    count = 0
    for i in range(queries.shape[0]):
        q = queries[i]
        gen = gen0 + i
        for c in range(NUM_CHUNKS):
            v = _chunk(q, c)
            for p in range(probes.shape[0]):
                pv = v ^ probes[p]
                for k in range(starts[c, pv], starts[c, pv + 1]):
                    j = orders[c, k]
                    if seen[j] == gen:
                        continue
                    seen[j] = gen
                    d = (
                        pdq._popcount64(q[0] ^ bank[j, 0])
                        + pdq._popcount64(q[1] ^ bank[j, 1])
                        + pdq._popcount64(q[2] ^ bank[j, 2])
                        + pdq._popcount64(q[3] ^ bank[j, 3])
                    )
                    if d <= radius:
                        count = _record(count, i, j, d, out_q, out_b, out_d)
    return count


def probe_masks(probe_radius: int) -> np.ndarray:
    """XOR masks of every 16-bit value within ``probe_radius`` bits (0 first)."""
    masks = [0]
    if probe_radius >= 1:
        masks += [1 << a for a in range(CHUNK_BITS)]
    if probe_radius >= 2:
        masks += [(1 << a) | (1 << b) for a in range(CHUNK_BITS) for b in range(a + 1, CHUNK_BITS)]
    return np.array(masks, dtype=np.int64)


def _run_search(call, n_queries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``call(out_q, out_b, out_d) -> pair count``; grow the buffers and call again until all fit."""
    cap = max(INITIAL_RESULT_CAPACITY, 4 * n_queries)
    while True:
        out_q = np.empty(cap, dtype=np.int32)
        out_b = np.empty(cap, dtype=np.int64)
        out_d = np.empty(cap, dtype=np.int32)
        count = call(out_q, out_b, out_d)
        if count <= cap:
            return out_q[:count], out_b[:count], out_d[:count]
        cap = count


def as_hashes(a: np.ndarray) -> np.ndarray:
    """``a`` as a C-contiguous ``(N, 4)`` uint64 array (one hash: ``(1, 4)``)."""
    a = np.ascontiguousarray(a, dtype=np.uint64)
    if a.ndim == 1:
        a = a.reshape(1, -1)
    if a.ndim != 2 or a.shape[1] != pdq.HASH_WORDS:
        raise ValueError(f"hashes must be (N, {pdq.HASH_WORDS}) uint64, got {a.shape = }")
    return a


def brute_force_search(
    queries: np.ndarray, bank: np.ndarray, radius: int = DISTANCE_THRESHOLD
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs within ``radius``: ``(query index, bank index, distance)`` arrays."""
    q = as_hashes(queries)
    b = as_hashes(bank)
    if len(q) == 0 or len(b) == 0:
        return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int32)
    r = int(radius)
    return _run_search(lambda oq, ob, od: _brute_radius_search(q, b, r, oq, ob, od), len(q))


class MultiIndex:
    """Multi-index hashing over a fixed ``(M, 4)`` hash array (see module docstring).

    Memory: 16 x M int32 sorted postings, 16 x 65537 int32 offsets and M int64 scratch stamps:
    72 bytes per hash plus 4 MB (76 MB for a million). ``search`` is thread-safe (it serialises
    on a lock).
    """

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = as_hashes(hashes)
        m = len(self.hashes)
        chunks = np.empty((NUM_CHUNKS, m), dtype=np.int32)
        self.orders = np.empty((NUM_CHUNKS, m), dtype=np.int32)
        self.starts = np.zeros((NUM_CHUNKS, CHUNK_VALUES + 1), dtype=np.int32)
        if m:
            _chunk_values(self.hashes, chunks)
            _build_postings(chunks, self.orders, self.starts)
        self._seen = np.full(m, -1, dtype=np.int64)
        self._generation = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.hashes)

    @staticmethod
    def supports(radius: int) -> bool:
        return 0 <= radius < NUM_CHUNKS * (MAX_PROBE_RADIUS + 1)

    def search(
        self, queries: np.ndarray, radius: int = DISTANCE_THRESHOLD
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All pairs within ``radius`` (same result as ``brute_force_search``, order aside)."""
        q = as_hashes(queries)
        if not self.supports(radius):
            log.debug("radius %d is beyond the multi-index; brute force", radius)
            return brute_force_search(q, self.hashes, radius)
        if len(q) == 0 or len(self.hashes) == 0:
            return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, np.int32)
        probes = probe_masks(radius // NUM_CHUNKS)
        r = int(radius)

        def call(out_q: np.ndarray, out_b: np.ndarray, out_d: np.ndarray) -> int:
            gen0 = self._generation
            self._generation += len(q)  # fresh stamps for every kernel run, reruns included
            return _mih_radius_search(
                q, self.hashes, self.orders, self.starts, r, probes, self._seen, gen0, out_q, out_b, out_d
            )

        with self._lock:
            return _run_search(call, len(q))
