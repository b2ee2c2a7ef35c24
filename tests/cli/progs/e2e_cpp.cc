// End-to-end C++ program for tests/cli: new/delete, new[]/delete[], containers, strings.
// Expected: in use at exit: 400 bytes in 1 blocks (the leaked array); frames name Widget::make.
#include <string>
#include <vector>

struct Widget {
    int v[10];
    std::string name;
    virtual ~Widget() {}
    static __attribute__((noinline)) Widget *make(int i)
    {
        Widget *w = new Widget();
        w->v[0] = i;
        w->name = std::string(40, 'a' + i % 26);   // longer than the small-string buffer
        return w;
    }
};

static char *volatile sink;

int main()
{
    std::vector<Widget *> all;
    for (int i = 0; i < 500; i++)
        all.push_back(Widget::make(i));
    for (Widget *w : all)
        delete w;
    for (int i = 0; i < 100; i++) {
        char *buf = new char[128];
        sink = buf;
        delete[] buf;
    }
    sink = new char[400];   // leaked
    return 0;
}
