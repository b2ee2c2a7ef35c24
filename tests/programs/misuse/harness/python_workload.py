# A real program for the guard's no-false-report check: python3 under --redzone=16
# --quarantine=64M must end with "ERROR SUMMARY: 0 errors from 0 contexts".
import collections, decimal, hashlib, json, re, sqlite3, threading, zlib

def churn(seed):
    d = {str(i): [i] * (i % 13) for i in range(20000 + seed)}
    s = json.dumps(d)
    assert json.loads(s) == d
    return len(s)

threads = [threading.Thread(target=churn, args=(i,)) for i in range(4)]
for t in threads: t.start()
for t in threads: t.join()
text = " ".join(str(i * i) for i in range(50000))
words = collections.Counter(re.findall(r"\d{3}", text))
db = sqlite3.connect(":memory:")
db.execute("create table t (x integer, y text)")
db.executemany("insert into t values (?, ?)", ((i, str(i) * 3) for i in range(20000)))
total = sum(x for (x,) in db.execute("select x from t where y like '%7%'"))
blob = zlib.compress(text.encode() * 4)
digest = hashlib.sha256(zlib.decompress(blob)).hexdigest()
print("done", churn(0), len(words), total, digest[:8], decimal.Decimal(1) / 7)
