"""Lease-file parsing benchmark: 1 000 000-line dnsmasq and Kea files, a 200 000-block ISC file.

Each file is parsed by `connectors.dhcp` the way the lease reader (`connectors.leasefile`) feeds
it: in chunks of `leasefile.CHUNK` bytes, the unconsumed tail carried over, the Kea header passed
with every chunk after the first. Lines/s is printed per format; the baseline is Python's `csv`
module reading the Kea file (every row, no checks). Target: Kea lines/s >= 0.5 x csv lines/s.

    python bench/leases.py [--quick] [--profile]
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

from common import (
    T0,
    Figure,
    Timer,
    arguments,
    finish,
    peak_rss_mb,
    profiled,
    rate_at_least,
    reset_peak_rss,
    rss_figure,
    say,
    workdir,
)

from connectors import dhcp, leasefile

DEVICES = 20_000  # distinct (MAC, address) pairs: the files repeat them, as real ones do
KEA_HEADER = (
    "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,"
    "state,user_context\n"
)
WEEKDAYS = ("0", "1", "2", "3", "4", "5", "6")


def _device(k: int) -> tuple[str, str, str]:
    mac = f"02:00:00:{k >> 16 & 255:02x}:{k >> 8 & 255:02x}:{k & 255:02x}"
    return mac, f"10.{k >> 16 & 255}.{k >> 8 & 255}.{k & 255}", f"host-{k}"


def write_kea(path: Path, lines: int) -> int:
    rng = random.Random(1)
    base = int(T0.timestamp()) - 30 * 86_400
    with path.open("w", encoding="utf-8") as f:
        f.write(KEA_HEADER)
        for i in range(lines - 1):
            mac, ip, host = _device(rng.randrange(DEVICES))
            expire = base + i * 2 + 3600
            state = "0" if i % 10 else "2"
            f.write(f"{ip},{mac},01:{mac},3600,{expire},1,0,0,{host},{state},\n")
    return lines


def write_dnsmasq(path: Path, lines: int) -> int:
    rng = random.Random(2)
    base = int(T0.timestamp())
    with path.open("w", encoding="utf-8") as f:
        for i in range(lines):
            mac, ip, host = _device(rng.randrange(DEVICES))
            f.write(f"{base + i} {mac} {ip} {host} 01:{mac}\n")
    return lines


def write_isc(path: Path, blocks: int) -> int:
    """ISC dhcpd blocks as 4.x writes them; returns the number of lines."""
    rng = random.Random(3)
    base = int(T0.timestamp()) - 30 * 86_400
    count = 2
    with path.open("w", encoding="utf-8") as f:
        f.write("# The format of this file is documented in the dhcpd.leases(5) manual page.\n")
        f.write("# This lease file was written by isc-dhcp-4.4.3\n")
        for i in range(blocks):
            mac, ip, host = _device(rng.randrange(DEVICES))
            uid = "".join(f"\\{int(part, 16):03o}" for part in mac.split(":"))
            starts = _isc_time(base + i * 10)
            ends = _isc_time(base + i * 10 + 3600)
            f.write(
                f"lease {ip} {{\n  starts {starts};\n  ends {ends};\n  cltt {starts};\n"
                "  binding state active;\n  next binding state free;\n"
                f"  rewind binding state free;\n  hardware ethernet {mac};\n"
                f'  uid "\\001{uid}";\n  client-hostname "{host}";\n}}\n'
            )
            count += 11
    return count


def _isc_time(epoch: int) -> str:
    from datetime import UTC, datetime

    value = datetime.fromtimestamp(epoch, UTC)
    return f"{WEEKDAYS[value.isoweekday() % 7]} {value:%Y/%m/%d %H:%M:%S}"


def parse_file(path: Path, fmt: str) -> tuple[int, int]:
    """Parse the file chunk by chunk as the lease reader does; (leases, rejected)."""
    leases = rejected = 0
    header = None
    carry = b""
    with path.open("rb") as f:
        while True:
            block = f.read(leasefile.CHUNK)
            data = carry + block
            if not data:
                break
            if fmt == "kea":
                if header is None:
                    header = dhcp.kea_header(data)
                    result = dhcp.parse_kea(data, source=str(path))
                else:
                    result = dhcp.parse_kea(data, source=str(path), header=header)
            elif fmt == "dnsmasq":
                result = dhcp.parse_dnsmasq(data, source=str(path), read_at=T0)
            else:
                result = dhcp.parse_isc(data, source=str(path))
            leases += len(result.leases)
            rejected += len(result.rejects)
            carry = data[result.consumed :]
            if not block:
                break
    return leases, rejected


def csv_baseline(path: Path) -> int:
    """Python's csv module reading every row of the Kea file."""
    rows = 0
    with path.open(newline="", encoding="utf-8") as f:
        for _row in csv.reader(f):
            rows += 1
    return rows


def main() -> int:
    args = arguments(__doc__.splitlines()[0], engines=False).parse_args()
    lines, blocks = (20_000, 4_000) if args.quick else (1_000_000, 200_000)
    figures = []
    peak = 0.0
    with workdir(args.workdir) as where:
        files = {
            "kea": (where / "kea-leases4.csv", write_kea),
            "dnsmasq": (where / "dnsmasq.leases", write_dnsmasq),
            "isc": (where / "dhcpd.leases", write_isc),
        }
        counts = {}
        say(f"writing {lines:,}-line Kea and dnsmasq files and a {blocks:,}-block ISC file")
        for fmt, (path, write) in files.items():
            counts[fmt] = write(path, blocks if fmt == "isc" else lines)
        csv_baseline(files["kea"][0])  # warm the page cache for both
        with Timer() as base:
            rows = csv_baseline(files["kea"][0])
        base_rate = rows / base.seconds
        for fmt, (path, _write) in files.items():
            say(f"parsing {fmt}")
            reset_peak_rss()
            with Timer() as timer, profiled(args.profile):
                leases, rejected = parse_file(path, fmt)
            peak_fmt = peak_rss_mb()
            peak = max(peak, peak_fmt)
            say(
                f"{fmt}: {leases:,} leases, {rejected:,} rejected in {timer.seconds:.2f} s, "
                f"peak RSS {peak_fmt:.0f} MB"
            )
            rate = counts[fmt] / timer.seconds
            if fmt == "kea":
                figures.append(
                    Figure(
                        "kea_lines_per_s",
                        rate,
                        "lines/s",
                        base_rate,
                        ">= 0.5 x csv",
                        rate_at_least(0.5),
                    )
                )
            else:
                figures.append(Figure(f"{fmt}_lines_per_s", rate, "lines/s", base_rate))
            ok = rejected == 0 and leases > 0
            figures.append(
                Figure(f"{fmt}_rejected", rejected, "lines", target="0", check=lambda v, _r: v == 0)
            )
            if not ok:
                say(f"{fmt}: expected leases and no rejections")
    figures.append(rss_figure(peak))
    title = f"leases {lines:,}-line Kea/dnsmasq, {blocks:,}-block ISC"
    return finish(title, figures, quick=args.quick)


if __name__ == "__main__":
    sys.exit(main())
