// Attaches to the grid named on the command line, writes a key, reads it
// back, and prints it: proof that the installed headers and library work.
#include <numagrid/grid.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  auto grid = numagrid::Grid::Attach(argv[1]);
  if (!grid.ok()) {
    std::fprintf(stderr, "%s\n", grid.status().ToString().c_str());
    return 1;
  }
  if (!grid->Put("installed", "works").ok()) return 1;
  std::string v;
  if (!grid->Get("installed", &v).ok()) return 1;
  std::printf("%s\n", v.c_str());
  return 0;
}
