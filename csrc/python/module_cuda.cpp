// module_cuda.cpp: the pybind11 module for the CUDA kernels, compiled twice:
//   - kernelgrad._cuda (KG_CUDA_MODULE_NAME=_cuda) against the real CUDA runtime (static cudart,
//     which loads the driver lazily: the module imports on a machine without GPU or driver and
//     then reports device_count() == 0);
//   - kernelgrad._cuda_emu (with KG_CUDA_EMU) against the CUDA emulator.
// It exposes the device queries, the device-array layer (bind_cuda_*.cpp) and the self-test kernels (csrc/cuda/selftest.cu), each
// taking and returning NumPy arrays: inputs are copied to cudaMalloc'ed memory, outputs back.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "cuda/kg_cuda.cuh"
#include "cuda/selftest.h"
#include "python/bind_cuda.h"

#if !defined(KG_CUDA_MODULE_NAME)
#error "KG_CUDA_MODULE_NAME must name the module (_cuda or _cuda_emu)"
#endif

namespace py = pybind11;

namespace {

// ----------------------------------------------------------------------------------------------
// Device memory owned by the binding for the length of one call

template <typename T>
class DeviceArray {
public:
    explicit DeviceArray(size_t n) : n_(n) { KG_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&ptr_), n * sizeof(T))); }
    explicit DeviceArray(const py::array_t<T, py::array::c_style | py::array::forcecast>& host)
        : DeviceArray(static_cast<size_t>(host.size())) {
        KG_CUDA_CHECK(cudaMemcpy(ptr_, host.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
    }
    DeviceArray(const DeviceArray&) = delete;
    DeviceArray& operator=(const DeviceArray&) = delete;
    ~DeviceArray() { cudaFree(ptr_); }

    T* get() const { return ptr_; }

    py::array_t<T> to_numpy(std::vector<py::ssize_t> shape) const {
        py::array_t<T> out(std::move(shape));
        KG_CUDA_CHECK(cudaMemcpy(out.mutable_data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
        return out;
    }
    py::array_t<T> to_numpy() const { return to_numpy({static_cast<py::ssize_t>(n_)}); }

private:
    size_t n_;
    T* ptr_ = nullptr;
};

template <typename T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

int size_of(const py::array& a) { return static_cast<int>(a.size()); }

void check_width(int width) {
    if (width < 1 || width > 32 || (width & (width - 1)) != 0)
        throw py::value_error("width must be a power of 2 from 1 to 32, got " + std::to_string(width));
}

int device_count() {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e == cudaErrorInsufficientDriver || e == cudaErrorNoDevice) {
        cudaGetLastError();  // no driver or no GPU: not an error, just no device
        return 0;
    }
    kg::check(e, "cudaGetDeviceCount");
    return count;
}

}  // namespace

PYBIND11_MODULE(KG_CUDA_MODULE_NAME, m) {
    namespace st = kg::selftest;
    m.doc() = "kernelgrad's CUDA kernels (the real runtime, or the CPU emulator: see is_emulated())";
    kg::cuda::bind_cuda_tensor(m);
    kg::cuda::bind_cuda_conv(m);
    kg::cuda::bind_cuda_random(m);
    kg::cuda::bind_cuda_gemm(m);
    kg::cuda::bind_cuda_pool(m);
    kg::cuda::bind_cuda_norm(m);
    kg::cuda::bind_cuda_attention(m);

#if defined(KG_CUDA_EMU)
    m.def("is_emulated", [] { return true; }, "True: the CUDA kernels run on the CPU emulator");
    m.def("set_schedule", [](const std::string& spec) { kg::emu::set_schedule(spec.c_str()); }, py::arg("spec"),
          "Thread order of every later launch: 'forward', 'reverse' or 'random:SEED' "
          "(initially from KERNELGRAD_EMU_SCHEDULE).");
    m.def("get_schedule", [] { return std::string(kg::emu::schedule()); });
    m.def("context_switch_ns", &kg::emu::context_switch_ns, py::arg("iterations") = 1000000,
          "Nanoseconds per bare fiber context switch.");
    m.def("syncthreads_ns", &kg::emu::syncthreads_ns, py::arg("iterations") = 200,
          "Nanoseconds per thread per __syncthreads() in a block of 1024 threads.");
#else
    m.def("is_emulated", [] { return false; }, "False: the CUDA kernels run on a GPU");
#endif
    m.def("device_count", &device_count, "Number of CUDA devices (0 without a GPU or driver).");
    m.def("device_name", [](int index) {
        cudaDeviceProp prop{};
        KG_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
        return std::string(prop.name);
    }, py::arg("index") = 0);

    // --- self-test kernels
    m.def("vector_add", [](Array<float> a, Array<float> b, int grid, int block) {
        if (a.size() != b.size()) throw py::value_error("vector_add: a and b differ in size");
        DeviceArray<float> da(a), db(b), out(a.size());
        {
            py::gil_scoped_release release;
            st::vector_add(out.get(), da.get(), db.get(), size_of(a), grid, block);
        }
        return out.to_numpy();
    }, py::arg("a"), py::arg("b"), py::arg("grid") = 3, py::arg("block") = 128);

    m.def("block_sum", [](Array<float> x, int grid, int block) {
        DeviceArray<float> dx(x), partial(grid);
        py::gil_scoped_release release;
        return st::block_sum(partial.get(), dx.get(), size_of(x), grid, block);
    }, py::arg("x"), py::arg("grid") = 4, py::arg("block") = 256);

    m.def("transpose", [](Array<float> x) {
        if (x.ndim() != 2) throw py::value_error("transpose: expected a 2-d array");
        const int rows = static_cast<int>(x.shape(0)), cols = static_cast<int>(x.shape(1));
        DeviceArray<float> dx(x), out(x.size());
        {
            py::gil_scoped_release release;
            st::transpose(out.get(), dx.get(), rows, cols);
        }
        return out.to_numpy({cols, rows});
    }, py::arg("x"));

    m.def("neighbour_shift", [](Array<float> x, int block, bool with_barrier) {
        DeviceArray<float> dx(x), out(x.size());
        {
            py::gil_scoped_release release;
            st::neighbour_shift(out.get(), dx.get(), size_of(x), block, with_barrier);
        }
        return out.to_numpy();
    }, py::arg("x"), py::arg("block") = 64, py::arg("with_barrier") = true);

    m.def("histogram", [](Array<int> bins, Array<float> weights, int nbins) {
        if (bins.size() != weights.size()) throw py::value_error("histogram: bins and weights differ in size");
        for (py::ssize_t i = 0; i < bins.size(); ++i)
            if (bins.data()[i] < 0 || bins.data()[i] >= nbins) throw py::value_error("histogram: bin out of range");
        DeviceArray<int> dbins(bins);
        DeviceArray<float> dweights(weights), hist(nbins);
        {
            py::gil_scoped_release release;
            st::histogram(hist.get(), dbins.get(), dweights.get(), size_of(bins), nbins);
        }
        return hist.to_numpy();
    }, py::arg("bins"), py::arg("weights"), py::arg("nbins"));

    m.def("atomics", [](Array<int> xi, Array<float> xf) {
        if (xi.size() != xf.size()) throw py::value_error("atomics: xi and xf differ in size");
        DeviceArray<int> dxi(xi), rint(2);
        DeviceArray<float> dxf(xf), rfloat(1);
        DeviceArray<unsigned> rcount(1);
        DeviceArray<double> rsum(1);
        {
            py::gil_scoped_release release;
            st::atomics(rint.get(), rfloat.get(), rcount.get(), rsum.get(), dxi.get(), dxf.get(), size_of(xi));
        }
        const auto ints = rint.to_numpy();
        py::dict result;
        result["max"] = ints.at(0);
        result["min"] = ints.at(1);
        result["float_max"] = rfloat.to_numpy().at(0);
        result["count_positive"] = rcount.to_numpy().at(0);
        result["sum"] = rsum.to_numpy().at(0);
        return result;
    }, py::arg("xi"), py::arg("xf"));

    m.def("warp_vote", [](Array<int> pred) {
        const size_t warps = (pred.size() + 31) / 32;
        DeviceArray<int> dpred(pred), any(warps), all(warps), sum(warps);
        DeviceArray<unsigned> ballot(warps);
        {
            py::gil_scoped_release release;
            st::warp_vote(ballot.get(), any.get(), all.get(), sum.get(), dpred.get(), size_of(pred));
        }
        return py::make_tuple(ballot.to_numpy(), any.to_numpy(), all.to_numpy(), sum.to_numpy());
    }, py::arg("pred"));

    m.def("warp_scan", [](Array<int> x, int width) {
        check_width(width);
        DeviceArray<int> dx(x), out(x.size());
        {
            py::gil_scoped_release release;
            st::warp_scan(out.get(), dx.get(), size_of(x), width);
        }
        return out.to_numpy();
    }, py::arg("x"), py::arg("width") = 32);

    m.def("warp_allreduce", [](Array<float> x, int width) {
        check_width(width);
        DeviceArray<float> dx(x), out(x.size());
        {
            py::gil_scoped_release release;
            st::warp_allreduce(out.get(), dx.get(), size_of(x), width);
        }
        return out.to_numpy();
    }, py::arg("x"), py::arg("width") = 32);

    m.def("warp_broadcast", [](Array<float> x, int src_lane, int width) {
        check_width(width);
        DeviceArray<float> dx(x), out(x.size());
        {
            py::gil_scoped_release release;
            st::warp_broadcast(out.get(), dx.get(), size_of(x), src_lane, width);
        }
        return out.to_numpy();
    }, py::arg("x"), py::arg("src_lane"), py::arg("width") = 32);

    m.def("block_count", [](Array<int> pred, int block) {
        const size_t blocks = (pred.size() + block - 1) / block;
        DeviceArray<int> dpred(pred), counts(blocks);
        {
            py::gil_scoped_release release;
            st::block_count(counts.get(), dpred.get(), size_of(pred), block);
        }
        return counts.to_numpy();
    }, py::arg("pred"), py::arg("block") = 128);

    m.def("write_even", [](int n) {
        DeviceArray<float> out(n);
        {
            py::gil_scoped_release release;
            st::write_even(out.get(), n);
        }
        return out.to_numpy();
    }, py::arg("n"));

    m.def("read_dynamic_smem", [](int n) {
        DeviceArray<float> out(n);
        {
            py::gil_scoped_release release;
            st::read_dynamic_smem(out.get(), n);
        }
        return out.to_numpy();
    }, py::arg("n"));

    m.def("fill_smem", [](int smem_bytes, bool opt_in) {
        DeviceArray<float> out(smem_bytes / sizeof(float));
        {
            py::gil_scoped_release release;
            st::fill_smem(out.get(), smem_bytes, opt_in);
        }
        return out.to_numpy();
    }, py::arg("smem_bytes"), py::arg("opt_in"));

    m.def("stream_roundtrip", [](Array<float> x) {
        py::array_t<float> out(x.size());
        float ms;
        {
            py::gil_scoped_release release;
            ms = st::stream_roundtrip(out.mutable_data(), x.data(), size_of(x));
        }
        return py::make_tuple(out, ms);
    }, py::arg("x"));

    m.def("bug_names", &st::bug_names);
    m.def("plant_bug", [](const std::string& name) {
        DeviceArray<float> scratch(2048);
        py::gil_scoped_release release;
        st::plant_bug(name, scratch.get());
    }, py::arg("name"));
    m.def("last_error_probe", &st::last_error_probe);
}
