# gen_cfile: writes the large, self-contained C file that bench/realprograms.sh compiles with
# gcc's cc1 -O2 (no #include, so cc1 can run on it directly).  Deterministic.
# Usage: /usr/bin/python3 bench/gen_cfile.py N_FUNCS > big.c
import random
import sys


def main():
    n_funcs = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    rng = random.Random(2024)
    out = sys.stdout
    out.write("typedef unsigned long u64;\n")
    out.write("struct node { struct node *next; u64 key; u64 val[4]; int kind; };\n")
    out.write("extern void sink(u64);\nextern struct node *lookup(u64);\n\n")
    for i in range(n_funcs):
        ops = rng.sample(("+", "-", "^", "*", "|", "&"), 3)
        shift = rng.randrange(1, 31)
        cases = rng.randrange(3, 9)
        out.write("u64 fn%d(struct node *n, u64 a, u64 b, int k)\n{\n" % i)
        out.write("    u64 acc = a %s %du;\n" % (ops[0], rng.randrange(1, 1 << 20)))
        out.write("    for (int i = 0; i < k; i++) {\n")
        out.write("        acc = (acc << %d) %s (b >> (i & 7));\n" % (shift, ops[1]))
        out.write("        if (n && n->kind == i) acc %s= n->val[i & 3];\n" % ops[2])
        out.write("        switch ((acc + i) %% %d) {\n" % cases)
        for c in range(cases):
            out.write("        case %d: acc += %du * (u64)i; b ^= acc >> %d; break;\n"
                      % (c, rng.randrange(1, 1000), rng.randrange(1, 60)))
        out.write("        default: sink(acc);\n        }\n    }\n")
        out.write("    for (struct node *p = n; p; p = p->next)\n")
        out.write("        acc += p->key * %du + (p->val[%d] >> 3);\n" % (rng.randrange(3, 99), rng.randrange(4)))
        if i > 0:
            j = rng.randrange(i)
            out.write("    if (acc & 1) acc += fn%d(lookup(acc), b, a, k - 1);\n" % j)
        out.write("    return acc;\n}\n\n")
    out.write("u64 run_all(struct node *n, u64 a)\n{\n    u64 s = 0;\n")
    for i in range(0, n_funcs, max(1, n_funcs // 200)):
        out.write("    s += fn%d(n, a + %d, s, 5);\n" % (i, i))
    out.write("    return s;\n}\n")


main()
