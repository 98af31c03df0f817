package dev.jvllm.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * A shared library opened once for the life of the process, and its functions as method handles.
 * It is looked up by its soname first (the loader's path, LD_LIBRARY_PATH), then in the CUDA
 * toolkit's folders; a missing library is an error that says where it was looked for.
 */
final class NativeLibrary {

    private final String name;
    private final SymbolLookup symbols;

    private NativeLibrary(String name, SymbolLookup symbols) {
        this.name = name;
        this.symbols = symbols;
    }

    static NativeLibrary open(String soname) {
        try {
            return new NativeLibrary(soname, SymbolLookup.libraryLookup(soname, Arena.global()));
        } catch (IllegalArgumentException notOnLoaderPath) {
            List<String> tried = new ArrayList<>(List.of("the loader's path"));
            for (Path dir : toolkitDirectories()) {
                Path candidate = dir.resolve(soname);
                tried.add(dir.toString());
                if (Files.exists(candidate)) {
                    try {
                        return new NativeLibrary(soname, SymbolLookup.libraryLookup(candidate, Arena.global()));
                    } catch (IllegalArgumentException unloadable) {
                        throw new CudaException(soname + " at " + candidate + " could not be loaded: "
                                + unloadable.getMessage());
                    }
                }
            }
            throw new CudaException(soname + " not found (looked in " + String.join(", ", tried) + ")");
        }
    }

    private static List<Path> toolkitDirectories() {
        List<Path> dirs = new ArrayList<>();
        for (String variable : new String[]{"CUDA_HOME", "CUDA_PATH"}) {
            String home = System.getenv(variable);
            if (home != null && !home.isBlank()) dirs.add(Path.of(home, "lib64"));
        }
        dirs.add(Path.of("/usr/local/cuda/lib64"));
        dirs.add(Path.of("/usr/local/cuda/targets/x86_64-linux/lib"));
        return dirs;
    }

    /** The function {@code symbol} with the given C signature. */
    MethodHandle function(String symbol, FunctionDescriptor signature) {
        return Linker.nativeLinker().downcallHandle(symbols.find(symbol).orElseThrow(() ->
                new CudaException(name + " has no function " + symbol + " (too old a version?)")), signature);
    }

    String name() {
        return name;
    }

    /**
     * Calls a function that returns a status code, with boxed arguments (for the calls that are
     * not hot; those use {@code invokeExact}).
     */
    static int call(MethodHandle function, Object... arguments) {
        try {
            return (int) function.invokeWithArguments(arguments);
        } catch (Throwable t) {
            throw unexpected(t);
        }
    }

    /** A throwable from a downcall, as the unchecked exception to throw (errors are rethrown as they are). */
    static RuntimeException unexpected(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    /**
     * The binding to a library ({@link CudaDriver}, {@link Nvrtc}, {@link Cublas}, {@link CublasLt}), made on first
     * use and kept; when it cannot be made, the reason is kept and thrown on every use.
     */
    static final class LazyBinding<T> {

        private final Supplier<T> bind;
        private T binding;
        private CudaException failure;

        LazyBinding(Supplier<T> bind) {
            this.bind = bind;
        }

        synchronized T get() {
            if (binding == null && failure == null) {
                try {
                    binding = bind.get();
                } catch (CudaException e) {
                    failure = e;
                }
            }
            if (binding == null) throw failure;
            return binding;
        }
    }
}
