# The CUDA backend: src/backends/cuda (kernels in .cu, cuBLASLt for GEMMs, cuDNN 9 for convolutions,
# NVRTC for generated kernels). Built wherever the CUDA toolkit and cuDNN are found, GPU or not: CI has
# the toolkit but no GPU and still compiles every line of it. Without the toolkit Kiln is a CPU build.
#
# cuDNN is looked for in CUDNN_ROOT (cache or environment), then in the `nvidia.cudnn` Python package
# (where pip puts it, as on the GPU machine), then beside the CUDA toolkit.
option(KILN_CUDA "Build the CUDA backend when the CUDA toolkit is found" ON)
set(KILN_CUDA_ARCHITECTURES "80;90" CACHE STRING "GPU architectures the CUDA backend is compiled for")
set(KILN_HAVE_CUDA OFF)

if(KILN_CUDA)
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    set(CMAKE_CUDA_ARCHITECTURES ${KILN_CUDA_ARCHITECTURES})
    enable_language(CUDA)
    # Kiln is C++20 and CUDA targets take CXX_STANDARD; CMake 3.25 does not know nvcc's C++20 flag.
    if(NOT CMAKE_CUDA20_STANDARD_COMPILE_OPTION)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
    endif()
    find_package(CUDAToolkit)
    # CMake links each language's implicit library folders. When nvcc's host compiler is another GCC than the
    # C++ compiler, its folders come first and -lstdc++ can find its static libstdc++.a: a second C++ runtime
    # inside libkiln_core.so beside the process's shared one, which broke C++ stream formatting in the Python
    # module (engine.describe() crashed on the GPU machine, whose environment set CUDAHOSTCXX to another GCC).
    foreach(_dir ${CMAKE_CUDA_IMPLICIT_LINK_DIRECTORIES})
      if(NOT _dir IN_LIST CMAKE_CXX_IMPLICIT_LINK_DIRECTORIES AND EXISTS "${_dir}/libstdc++.a")
        message(WARNING "Kiln: nvcc's host compiler (${CMAKE_CUDA_HOST_COMPILER}) brings the library folder "
                        "${_dir}, which holds a libstdc++.a that ${CMAKE_CXX_COMPILER} does not use; the link may "
                        "put a static C++ runtime into libkiln_core.so. Set CUDAHOSTCXX to the C++ compiler.")
      endif()
    endforeach()
  else()
    message(STATUS "Kiln: no CUDA compiler found; building the CPU backend only")
  endif()
endif()

if(KILN_CUDA AND CMAKE_CUDA_COMPILER AND CUDAToolkit_FOUND)
  set(_cudnn_hints)
  if(CUDNN_ROOT)
    list(APPEND _cudnn_hints ${CUDNN_ROOT})
  endif()
  if(DEFINED ENV{CUDNN_ROOT})
    list(APPEND _cudnn_hints $ENV{CUDNN_ROOT})
  endif()
  find_package(Python3 COMPONENTS Interpreter QUIET)
  if(Python3_Interpreter_FOUND)
    execute_process(COMMAND ${Python3_EXECUTABLE} -c "import nvidia.cudnn as c; print(c.__path__[0])"
                    OUTPUT_VARIABLE _cudnn_py OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(_cudnn_py)
      list(APPEND _cudnn_hints ${_cudnn_py})
    endif()
  endif()
  list(APPEND _cudnn_hints ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_TARGET_DIR})
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${_cudnn_hints} PATH_SUFFIXES include NO_CACHE)
  # pip's package ships only the versioned name libcudnn.so.9.
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${_cudnn_hints} PATH_SUFFIXES lib lib64 NO_CACHE)
  if(NOT CUDNN_INCLUDE_DIR OR NOT CUDNN_LIBRARY)
    message(WARNING "Kiln: CUDA toolkit found but not cuDNN 9 (set CUDNN_ROOT); building the CPU backend only")
  else()
    set(KILN_HAVE_CUDA ON)
  endif()
endif()

if(KILN_HAVE_CUDA)
  file(GLOB_RECURSE KILN_CUDA_SOURCES CONFIGURE_DEPENDS src/backends/cuda/*.cpp src/backends/cuda/*.cu)
  target_sources(kiln_core PRIVATE ${KILN_CUDA_SOURCES})
  get_filename_component(CUDNN_LIBRARY_DIR ${CUDNN_LIBRARY} DIRECTORY)
  target_include_directories(kiln_core PRIVATE ${CUDNN_INCLUDE_DIR})
  target_compile_definitions(kiln_core PUBLIC KILN_WITH_CUDA=1)
  target_link_libraries(kiln_core PUBLIC CUDA::cudart CUDA::cublasLt CUDA::nvrtc ${CUDNN_LIBRARY})
  set_target_properties(kiln_core PROPERTIES
    CUDA_ARCHITECTURES "${KILN_CUDA_ARCHITECTURES}"
    BUILD_RPATH "${CUDNN_LIBRARY_DIR};${CUDAToolkit_LIBRARY_DIR}")
  if(CCACHE_PROGRAM)
    set_target_properties(kiln_core PROPERTIES CUDA_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  endif()
  # --expt-relaxed-constexpr: std::numeric_limits and constexpr helpers in device code.
  target_compile_options(kiln_core PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr -O3 -lineinfo>)
  message(STATUS "Kiln: CUDA backend for sm ${KILN_CUDA_ARCHITECTURES}; cuDNN ${CUDNN_LIBRARY}")
endif()
