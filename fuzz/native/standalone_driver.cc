// A libFuzzer-compatible driver for builds without libFuzzer (g++): replays
// every file and directory given, then runs a bounded number of random
// mutations of them. No coverage feedback: this is the smoke that `npm test`
// runs; `npm run fuzz` uses clang's libFuzzer for the real search.
//
//   driver [-runs=N] [-max_total_time=S] [-seed=N] [-crash_file=PATH] FILE|DIR...
#include <dirent.h>
#include <sanitizer/common_interface_defs.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "failure_hook.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

constexpr size_t kMaxLen = 4096;
std::vector<uint8_t> g_current;
std::string g_crash_file;

void SaveCurrent() {
  if (g_crash_file.empty()) return;
  FILE* f = fopen(g_crash_file.c_str(), "wb");
  if (f == nullptr) return;
  if (!g_current.empty()) fwrite(g_current.data(), 1, g_current.size(), f);
  fclose(f);
}

void ReportSaved() {
  if (!g_crash_file.empty()) fprintf(stderr, "driver: the failing input is in %s\n", g_crash_file.c_str());
}

void Run(const std::vector<uint8_t>& in) {
  g_current = in;
  // Written before the run: a sanitizer report may end the process without
  // calling back. Removed again when the whole run passes.
  SaveCurrent();
  // A copy of exact size, so ASan catches a harness that reads past the input.
  std::unique_ptr<uint8_t[]> copy(new uint8_t[in.size() ? in.size() : 1]);
  if (!in.empty()) memcpy(copy.get(), in.data(), in.size());
  LLVMFuzzerTestOneInput(copy.get(), in.size());
}

bool ReadFile(const std::string& path, std::vector<uint8_t>* out) {
  FILE* f = fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  out->clear();
  uint8_t buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) out->insert(out->end(), buf, buf + n);
  fclose(f);
  return true;
}

void Collect(const std::string& path, std::vector<std::string>* files) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) {
    files->push_back(path);
    return;
  }
  DIR* d = opendir(path.c_str());
  if (d == nullptr) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') names.push_back(path + "/" + e->d_name);
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) Collect(n, files);
}

double Now() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct Mutator {
  std::mt19937_64 rng;
  explicit Mutator(uint64_t seed) : rng(seed) {}
  size_t Below(size_t n) { return n == 0 ? 0 : rng() % n; }

  void Mutate(std::vector<uint8_t>* v, const std::vector<std::vector<uint8_t>>& corpus) {
    static const uint32_t kInteresting[] = {0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x401, 0x800, 0xfff,
                                            0x1000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff};
    int steps = 1 + static_cast<int>(Below(6));
    for (int s = 0; s < steps; s++) {
      switch (Below(8)) {
        case 0:
          if (!v->empty()) (*v)[Below(v->size())] ^= static_cast<uint8_t>(1u << Below(8));
          break;
        case 1:
          if (!v->empty()) (*v)[Below(v->size())] = static_cast<uint8_t>(rng());
          break;
        case 2: {  // an interesting little-endian value
          uint32_t x = kInteresting[Below(sizeof kInteresting / sizeof *kInteresting)];
          size_t w = size_t(1) << Below(3);
          if (v->size() >= w) {
            size_t at = Below(v->size() - w + 1);
            for (size_t i = 0; i < w; i++) (*v)[at + i] = static_cast<uint8_t>(x >> (8 * i));
          }
          break;
        }
        case 3: {  // insert random bytes
          size_t at = Below(v->size() + 1), n = 1 + Below(16);
          for (size_t i = 0; i < n; i++) v->insert(v->begin() + at, static_cast<uint8_t>(rng()));
          break;
        }
        case 4:  // delete a range
          if (!v->empty()) {
            size_t at = Below(v->size()), n = 1 + Below(std::min<size_t>(16, v->size() - at));
            v->erase(v->begin() + at, v->begin() + at + n);
          }
          break;
        case 5:  // duplicate a range (repeats an operation)
          if (!v->empty()) {
            size_t at = Below(v->size()), n = 1 + Below(std::min<size_t>(32, v->size() - at));
            std::vector<uint8_t> part(v->begin() + at, v->begin() + at + n);
            v->insert(v->begin() + Below(v->size() + 1), part.begin(), part.end());
          }
          break;
        case 6:  // splice in the tail of another input
          if (!corpus.empty()) {
            const auto& o = corpus[Below(corpus.size())];
            size_t cut = Below(v->size() + 1), from = Below(o.size() + 1);
            v->resize(cut);
            v->insert(v->end(), o.begin() + from, o.end());
          }
          break;
        case 7:  // append random bytes (more operations)
          for (size_t i = 0, n = 1 + Below(32); i < n; i++) v->push_back(static_cast<uint8_t>(rng()));
          break;
      }
    }
    if (v->size() > kMaxLen) v->resize(kMaxLen);
  }
};

}  // namespace

int main(int argc, char** argv) {
  long runs = 0;
  double max_time = 0;
  uint64_t seed = static_cast<uint64_t>(time(nullptr));
  std::vector<std::string> files;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a.rfind("-runs=", 0) == 0) runs = atol(a.c_str() + 6);
    else if (a.rfind("-max_total_time=", 0) == 0) max_time = atof(a.c_str() + 16);
    else if (a.rfind("-seed=", 0) == 0) seed = strtoull(a.c_str() + 6, nullptr, 10);
    else if (a.rfind("-crash_file=", 0) == 0) g_crash_file = a.substr(12);
    else if (a[0] == '-') fprintf(stderr, "driver: ignoring %s\n", a.c_str());
    else Collect(a, &files);
  }
  __sanitizer_set_death_callback(ReportSaved);
  fuzz::g_on_failure = ReportSaved;

  std::vector<std::vector<uint8_t>> corpus;
  for (const auto& f : files) {
    std::vector<uint8_t> in;
    if (!ReadFile(f, &in)) {
      fprintf(stderr, "driver: cannot read %s\n", f.c_str());
      return 2;
    }
    Run(in);
    corpus.push_back(std::move(in));
  }
  double start = Now();
  Mutator m(seed);
  long done = 0;
  for (; done < runs; done++) {
    if (max_time > 0 && (done & 15) == 0 && Now() - start > max_time) break;
    std::vector<uint8_t> in = corpus.empty() ? std::vector<uint8_t>() : corpus[m.Below(corpus.size())];
    m.Mutate(&in, corpus);
    Run(in);
  }
  if (!g_crash_file.empty()) unlink(g_crash_file.c_str());
  printf("driver: replayed %zu inputs, ran %ld mutations (seed %llu) in %.1f s, no failure\n", corpus.size(), done,
         static_cast<unsigned long long>(seed), Now() - start);
  return 0;
}
