package dev.jvllm.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.List;
import java.util.Map;

import static dev.jvllm.cuda.NativeLibrary.call;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/** NVRTC ({@code libnvrtc.so.13}): CUDA C++ compiled to a cubin at run time. Needs no GPU. */
final class Nvrtc {

    private static final NativeLibrary.LazyBinding<Nvrtc> BINDING =
            new NativeLibrary.LazyBinding<>(() -> new Nvrtc(NativeLibrary.open("libnvrtc.so.13")));

    /** NVRTC, loaded once; throws the reason when it cannot be. */
    static Nvrtc get() {
        return BINDING.get();
    }

    private final MethodHandle nvrtcVersion;
    private final MethodHandle nvrtcGetErrorString;
    private final MethodHandle nvrtcCreateProgram;
    private final MethodHandle nvrtcDestroyProgram;
    private final MethodHandle nvrtcCompileProgram;
    private final MethodHandle nvrtcGetProgramLogSize;
    private final MethodHandle nvrtcGetProgramLog;
    private final MethodHandle nvrtcGetCUBINSize;
    private final MethodHandle nvrtcGetCUBIN;
    private final MethodHandle nvrtcGetPTXSize;
    private final MethodHandle nvrtcGetPTX;

    private Nvrtc(NativeLibrary lib) {
        nvrtcVersion = lib.function("nvrtcVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetErrorString = lib.function("nvrtcGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        nvrtcCreateProgram = lib.function("nvrtcCreateProgram",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        nvrtcDestroyProgram = lib.function("nvrtcDestroyProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        nvrtcCompileProgram = lib.function("nvrtcCompileProgram", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        nvrtcGetProgramLogSize = lib.function("nvrtcGetProgramLogSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetProgramLog = lib.function("nvrtcGetProgramLog", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetCUBINSize = lib.function("nvrtcGetCUBINSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetCUBIN = lib.function("nvrtcGetCUBIN", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetPTXSize = lib.function("nvrtcGetPTXSize", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        nvrtcGetPTX = lib.function("nvrtcGetPTX", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
    }

    /** "13.0". */
    String version() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment major = arena.allocate(JAVA_INT);
            MemorySegment minor = arena.allocate(JAVA_INT);
            check("nvrtcVersion", call(nvrtcVersion, major, minor));
            return major.get(JAVA_INT, 0) + "." + minor.get(JAVA_INT, 0);
        }
    }

    /** What compiling a program gave: a cubin for a real architecture ({@code sm_90}), or PTX for a virtual one. */
    record Output(byte[] image, String log) {
    }

    /**
     * Compiles {@code source}; {@code headers} maps the names it includes to their text. A program
     * that does not compile is a {@link CudaException} carrying the compiler's log.
     */
    Output compile(String name, String source, Map<String, String> headers, List<String> options, boolean cubin) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment program = arena.allocate(ADDRESS);
            MemorySegment headerTexts = arena.allocate(ADDRESS, Math.max(1, headers.size()));
            MemorySegment headerNames = arena.allocate(ADDRESS, Math.max(1, headers.size()));
            int h = 0;
            for (Map.Entry<String, String> header : headers.entrySet()) {
                headerNames.setAtIndex(ADDRESS, h, arena.allocateFrom(header.getKey()));
                headerTexts.setAtIndex(ADDRESS, h, arena.allocateFrom(header.getValue()));
                h++;
            }
            check("nvrtcCreateProgram", call(nvrtcCreateProgram, program, arena.allocateFrom(source),
                    arena.allocateFrom(name), headers.size(), headerTexts, headerNames));
            MemorySegment handle = program.get(ADDRESS, 0);
            try {
                MemorySegment optionArray = arena.allocate(ADDRESS, Math.max(1, options.size()));
                for (int i = 0; i < options.size(); i++) {
                    optionArray.setAtIndex(ADDRESS, i, arena.allocateFrom(options.get(i)));
                }
                int compiled = call(nvrtcCompileProgram, handle, options.size(), optionArray);
                String log = log(arena, handle);
                if (compiled != 0) {
                    throw new CudaException("nvrtcCompileProgram(" + name + ")", errorString(compiled),
                            "options " + options + "\n" + log);
                }
                return new Output(cubin ? bytes(arena, handle, nvrtcGetCUBINSize, nvrtcGetCUBIN, "nvrtcGetCUBIN")
                        : bytes(arena, handle, nvrtcGetPTXSize, nvrtcGetPTX, "nvrtcGetPTX"), log);
            } finally {
                check("nvrtcDestroyProgram", call(nvrtcDestroyProgram, program));
            }
        }
    }

    private String log(Arena arena, MemorySegment program) {
        MemorySegment size = arena.allocate(JAVA_LONG);
        check("nvrtcGetProgramLogSize", call(nvrtcGetProgramLogSize, program, size));
        MemorySegment text = arena.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        check("nvrtcGetProgramLog", call(nvrtcGetProgramLog, program, text));
        return text.getString(0).strip();
    }

    private byte[] bytes(Arena arena, MemorySegment program, MethodHandle sizeOf, MethodHandle get, String call) {
        MemorySegment size = arena.allocate(JAVA_LONG);
        check(call + "Size", call(sizeOf, program, size));
        MemorySegment data = arena.allocate(Math.max(1, size.get(JAVA_LONG, 0)));
        check(call, call(get, program, data));
        return data.asSlice(0, size.get(JAVA_LONG, 0)).toArray(JAVA_BYTE);
    }

    private void check(String call, int code) {
        if (code != 0) throw new CudaException(call, errorString(code), "");
    }

    private String errorString(int code) {
        try {
            MemorySegment text = (MemorySegment) nvrtcGetErrorString.invokeExact(code);
            return text.reinterpret(256).getString(0);
        } catch (Throwable t) {
            return "NVRTC error " + code;
        }
    }
}
