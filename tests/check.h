/* Private: the tiny CHECK() test harness shared by every unit test. */
#ifndef HTR_TESTS_CHECK_H
#define HTR_TESTS_CHECK_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_failures;

#define CHECK(cond) do { \
    if (!(cond)) { \
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        check_failures++; \
    } } while (0)

#define CHECK_EQ_U(a, b) do { \
    unsigned long long check_a_ = (unsigned long long)(a), check_b_ = (unsigned long long)(b); \
    if (check_a_ != check_b_) { \
        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%llu != %llu)\n", __FILE__, __LINE__, \
                #a, #b, check_a_, check_b_); \
        check_failures++; \
    } } while (0)

#define CHECK_STR(a, b) do { \
    const char *check_a_ = (a), *check_b_ = (b); \
    if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) { \
        fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", __FILE__, \
                __LINE__, #a, #b, check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
        check_failures++; \
    } } while (0)

/* Ends a test's main(): prints a one-line verdict, returns the exit status. */
#define CHECK_DONE() (check_failures ? \
    (fprintf(stderr, "FAILED: %d check(s)\n", check_failures), 1) : \
    (fprintf(stderr, "ok\n"), 0))

#endif
