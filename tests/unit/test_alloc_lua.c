/* Adapter test against the real Lua 5.4: a script runs on our allocator stack; Lua's own
 * byte count must equal the tracking layer's, and everything is back to 0 after lua_close,
 * also when allocations fail mid-script. */
#include <stdint.h>
#include <string.h>

#include "heaptrail.h"
#include "check.h"

#ifdef HTR_NO_LUA
int main(void)
{
    fprintf(stderr, "skipped: built without liblua5.4\n");
    return 77;
}
#else
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

static const char *script =
    "local t = {}\n"
    "for i = 1, 20000 do t[i] = string.rep('x', i % 100) .. i end\n"
    "local words = {}\n"
    "for k, v in ipairs(t) do words[v] = k end\n"
    "local n = 0\n"
    "for k in pairs(words) do n = n + 1 end\n"
    "t = nil; words = nil; collectgarbage()\n"
    "return n\n";

static size_t lua_bytes(lua_State *L)
{
    return (size_t)lua_gc(L, LUA_GCCOUNT, 0) * 1024 + (size_t)lua_gc(L, LUA_GCCOUNTB, 0);
}

static void test_lua_tracked(void)
{
    htr_validating_t *v = htr_validating_new(htr_libc_allocator(), NULL);
    htr_tracking_t *tr = htr_tracking_new(htr_validating_allocator(v), NULL);
    htr_testing_t *te = htr_testing_new(htr_tracking_allocator(tr), NULL);
    htr_allocator_t a = htr_testing_allocator(te);
    lua_State *L = lua_newstate(htr_lua_alloc, &a);
    CHECK(L != NULL);
    luaL_openlibs(L);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), lua_bytes(L));
    int rc = luaL_dostring(L, script);
    CHECK(rc == LUA_OK);
    CHECK(lua_tointeger(L, -1) == 20000);
    lua_pop(L, 1);
    /* Lua counts exactly what passes through lua_Alloc: the numbers must agree. */
    CHECK_EQ_U(htr_tracking_live_bytes(tr), lua_bytes(L));
    htr_alloc_stats_t s;
    htr_tracking_stats(tr, &s);
    CHECK(s.bytes_peak > 500000);
    fprintf(stderr, "lua: %zu bytes live after the script, peak %zu, %llu allocations\n",
            htr_tracking_live_bytes(tr), s.bytes_peak, (unsigned long long)s.n_allocs);
    lua_close(L);
    CHECK_EQ_U(htr_tracking_live_bytes(tr), 0);
    CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
    CHECK_EQ_U(htr_validating_errors(v), 0);
    htr_testing_destroy(te);
    htr_tracking_destroy(tr);
    htr_validating_destroy(v);
}

/* Out of memory inside Lua: the script fails with LUA_ERRMEM, nothing leaks. */
static void test_lua_oom(void)
{
    int n_errmem = 0;
    for (int run = 0; run < 20; run++) {
        htr_failing_t *f = htr_failing_new(htr_libc_allocator(), NULL);
        htr_testing_t *te = htr_testing_new(htr_failing_allocator(f), NULL);
        htr_allocator_t a = htr_testing_allocator(te);
        lua_State *L = lua_newstate(htr_lua_alloc, &a);
        luaL_openlibs(L);
        htr_failing_set(f, &(htr_failing_opts_t){ HTR_FAIL_AFTER, 500 + (uint64_t)run * 1000, 0, 0 });
        /* not luaL_dostring: its `||` folds the status to 0/1 */
        int rc = luaL_loadstring(L, script);
        if (rc == LUA_OK)
            rc = lua_pcall(L, 0, 1, 0);
        n_errmem += rc == LUA_ERRMEM;
        if (rc != LUA_OK && rc != LUA_ERRMEM)
            fprintf(stderr, "rc %d: %s\n", rc, lua_tostring(L, -1));
        CHECK(rc == LUA_OK || rc == LUA_ERRMEM);
        htr_failing_set(f, NULL);
        lua_close(L);
        CHECK_EQ_U(htr_testing_finish(te, NULL), 0);
        htr_testing_destroy(te);
        htr_failing_destroy(f);
    }
    CHECK(n_errmem >= 10);
    /* lua_newstate itself failing */
    htr_failing_t *f = htr_failing_new(htr_libc_allocator(),
                                       &(htr_failing_opts_t){ HTR_FAIL_AFTER, 0, 0, 0 });
    htr_allocator_t a = htr_failing_allocator(f);
    CHECK(lua_newstate(htr_lua_alloc, &a) == NULL);
    htr_failing_destroy(f);
}

int main(void)
{
    test_lua_tracked();
    test_lua_oom();
    return CHECK_DONE();
}
#endif
