# py_churn: the Python workload of bench/realprograms.sh: dict, list, tuple and string churn.
# Run as `PYTHONMALLOC=malloc /usr/bin/python3 -S bench/py_churn.py ROUNDS`; prints one checksum.
# PYTHONMALLOC=malloc matters: with the default pymalloc, objects up to 512 bytes come from
# pymalloc's own 256 KiB arenas and never reach malloc, so a malloc-level tool (heaptrail,
# heaptrack, valgrind) sees only a small fraction of the interpreter's allocations.
import random
import sys


def make_record(rng, i):
    name = "user%06d" % rng.randrange(1000000)
    tags = [rng.choice(("red", "green", "blue", "amber", "teal")) + str(j) for j in range(rng.randrange(1, 6))]
    return {"id": i, "name": name, "score": rng.random() * 100.0, "tags": tags, "pos": (i, -i, i * 2)}


def one_round(rng, round_no):
    records = [make_record(rng, round_no * 10000 + i) for i in range(4000)]
    by_tag = {}
    for rec in records:
        for tag in rec["tags"]:
            by_tag.setdefault(tag, []).append(rec["id"])
    lines = ["%s,%d,%.3f,%s" % (r["name"], r["id"], r["score"], "|".join(r["tags"])) for r in records]
    text = "\n".join(lines)
    parsed = [line.split(",") for line in text.split("\n")]
    words = {}
    for fields in parsed:
        for word in fields[3].split("|"):
            words[word] = words.get(word, 0) + 1
    records.sort(key=lambda r: (r["score"], r["name"]))
    top = [r["name"].upper() + ":" + str(len(r["tags"])) for r in records[:500]]
    sets = [frozenset(r["tags"]) for r in records[::7]]
    return len(text) + sum(words.values()) + len(by_tag) + len("".join(top)) + len(set(sets))


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    rng = random.Random(12345)
    checksum = 0
    keep = []  # a sliding window of earlier rounds' results keeps some memory live
    for round_no in range(rounds):
        checksum = (checksum * 31 + one_round(rng, round_no)) & 0xFFFFFFFF
        keep.append([str(round_no) * 3] * 1000)
        if len(keep) > 8:
            keep.pop(0)
    print(checksum)


main()
