"""Markdown table and bar plot from a pytest-benchmark JSON file.

Run the benchmarks and make the report (from the repository root; NumPy's OpenBLAS must not be
pinned to another core type, and every library gets 2 threads):

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=2 python -m pytest bench --benchmark-json=bench/results.json && python bench/report.py bench/results.json --md bench/RESULTS.md --png bench/ratios.png

For each benchmark group (one shape of one op) the table gives the median time of kernelgrad,
of the NumPy reference and of torch (when it was installed), and the ratios
other / kernelgrad: above 1 means kernelgrad is faster. The PNG plots those ratios.
"""
import argparse
import json
import sys
from collections import defaultdict

IMPLS = ("kernelgrad", "reference", "torch")


def load_medians(path):
    """{group: {impl: median seconds}} in the order the groups were run, and the machine info."""
    with open(path) as f:
        data = json.load(f)
    groups = defaultdict(dict)
    for bench in data["benchmarks"]:
        impl = bench.get("extra_info", {}).get("impl")
        if impl in IMPLS:
            groups[bench["group"]][impl] = bench["stats"]["median"]
    return dict(groups), data.get("machine_info", {})


def ratio(groups, group, impl):
    times = groups[group]
    if impl in times and "kernelgrad" in times:
        return times[impl] / times["kernelgrad"]
    return None


def markdown(groups, machine):
    fmt_ms = lambda t: "" if t is None else f"{t * 1e3:.3f}"
    fmt_x = lambda r: "" if r is None else f"{r:.2f}x"
    lines = [
        f"Machine: {machine.get('cpu', {}).get('brand_raw', '?')}, Python {machine.get('python_version', '?')}. "
        "Median times; ratio = other / kernelgrad (above 1: kernelgrad is faster).",
        "",
        "| benchmark | kernelgrad (ms) | reference (ms) | reference / kernelgrad | torch (ms) | torch / kernelgrad |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for group, times in groups.items():
        lines.append(
            f"| {group} | {fmt_ms(times.get('kernelgrad'))} | {fmt_ms(times.get('reference'))} | "
            f"{fmt_x(ratio(groups, group, 'reference'))} | {fmt_ms(times.get('torch'))} | "
            f"{fmt_x(ratio(groups, group, 'torch'))} |"
        )
    return "\n".join(lines) + "\n"


def plot(groups, path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        sys.exit("report.py: --png needs matplotlib (pip install 'kernelgrad[bench]' or pip install matplotlib)")

    names = list(groups)
    others = [impl for impl in IMPLS[1:] if any(ratio(groups, g, impl) is not None for g in names)]
    width = 0.8 / max(len(others), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(names)), 4.5))
    for i, impl in enumerate(others):
        values = [ratio(groups, g, impl) or 0.0 for g in names]
        ax.bar([x + i * width for x in range(len(names))], values, width, label=f"{impl} / kernelgrad")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_xticks([x + width * (len(others) - 1) / 2 for x in range(len(names))])
    ax.set_xticklabels(names, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("median time ratio (above 1: kernelgrad faster)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", help="pytest-benchmark output (--benchmark-json)")
    parser.add_argument("--md", help="write the Markdown table here (default: stdout)")
    parser.add_argument("--png", help="write a bar plot of the ratios here")
    args = parser.parse_args(argv)

    groups, machine = load_medians(args.json)
    table = markdown(groups, machine)
    if args.md:
        with open(args.md, "w") as f:
            f.write(table)
    else:
        sys.stdout.write(table)
    if args.png:
        plot(groups, args.png)


if __name__ == "__main__":
    main()
