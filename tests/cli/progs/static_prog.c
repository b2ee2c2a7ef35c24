/* A statically linked program: `heaptrail run` must refuse it (nothing can preload the agent). */
int main(void)
{
    return 0;
}
