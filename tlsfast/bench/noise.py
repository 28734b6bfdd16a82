"""
Rows not to trust: a large spread over the repetitions, or a result that
cannot be right (plain TCP slower, or costing more CPU, than TLS by more
than 10 %).  :func:`mark` flags them
on the results (the tables' ``flags`` column, the JSON's ``flags``) and
returns the hints a run prints.

The spread is (max - min) / median over the repetitions (over the rounds in
the engine scenario).  CPU time per operation gets the tighter limit: it is
the figure of merit and stays steady on a busy machine; the rate also moves
with the load generator's own scheduling, so a wider swing is normal for it.
"""

from __future__ import annotations

from tlsfast.bench.runner import Result

CPU_SPREAD_LIMIT = 0.3
RATE_SPREAD_LIMIT = 0.6
# plain TCP must be worse than a TLS stack by this much to be called implausible:
# echo rates are set by the load generator's round trips, close for every stack
IMPLAUSIBLE_MARGIN = 0.1
# The stacks plain TCP (Twisted, no TLS) is the ceiling of: those whose every
# byte takes Twisted's own TCP path.  asyncio's and uvloop's loops are other
# programs: uvloop's C loop with TLS can cost less per message than Twisted's
# Python loop without it.  So can tlsfast's record loop: it reads, decrypts,
# delivers and sends a reply in one compiled read event, skipping the write
# turn (an epoll_ctl pair and doWrite) Twisted's TCP transport pays per reply.
TCP_IS_CEILING_OF = ("twisted",)


def spread(median: float, low: float, high: float) -> float:
    """(max - min) / median; 0 for a median of 0 (nothing to compare with)."""
    return (high - low) / median if median else 0.0


def mark(results: list[Result], pinned: bool = True) -> list[str]:
    """Flag noisy and implausible rows of ``results``; return hints (empty
    when all is well).  ``pinned``: whether servers and load generator ran
    on cores of their own choosing (--server-core, --client-core)."""
    noisy = implausible = False
    for result in results:
        summary = result.summary()
        for stack, row in summary.items():
            if row["n"] < 2:
                continue
            cpu = spread(row["cpu_us_per_op_median"], row["cpu_us_per_op_min"], row["cpu_us_per_op_max"])
            rate = spread(row["rate_median"], row["rate_min"], row["rate_max"])
            if cpu > CPU_SPREAD_LIMIT:
                result.flag(stack, f"noisy: CPU per op spread {cpu:.0%} of the median")
                noisy = True
            if rate > RATE_SPREAD_LIMIT and result.scenario != "idle":
                result.flag(stack, f"noisy: rate spread {rate:.0%} of the median")
                noisy = True
        if "tcp" in summary and result.scenario != "idle":
            tcp = summary["tcp"]
            for stack, row in summary.items():
                if stack not in TCP_IS_CEILING_OF:  # (a --target is another server altogether)
                    continue
                if tcp["cpu_us_per_op_median"] > row["cpu_us_per_op_median"] * (1 + IMPLAUSIBLE_MARGIN):
                    result.flag("tcp", f"implausible: plain TCP used more CPU per op than {stack}")
                    implausible = True
                if tcp["rate_median"] < row["rate_median"] * (1 - IMPLAUSIBLE_MARGIN):
                    result.flag("tcp", f"implausible: plain TCP was slower than {stack}")
                    implausible = True
    hints = []
    pinning = ("keep other work off the pinned cores (--server-core, --client-core)" if pinned else
               "this run was not pinned: give --server-core and --client-core two cores this process may use")
    if noisy:
        hints.append(f"noisy rows: the spread over repetitions exceeds {CPU_SPREAD_LIMIT:.0%} (CPU per op) or "
                     f"{RATE_SPREAD_LIMIT:.0%} (rate) of the median; run more and longer repetitions "
                     f"(--reps 10 --seconds 5) and {pinning}.")
    if implausible:
        hints.append("implausible rows: plain TCP should beat TLS on the same event loop, so other work probably took "
                     f"the servers' core; run again with more repetitions (--reps 10) and {pinning}.")
    return hints
