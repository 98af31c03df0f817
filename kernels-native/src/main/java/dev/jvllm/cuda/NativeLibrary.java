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
}
