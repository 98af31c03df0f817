package dev.jvllm.server;

import dev.jvllm.JvllmException;
import dev.jvllm.LLM;
import dev.jvllm.Task;

import java.nio.file.Path;
import java.util.Locale;

/** The command line behind {@code ./jvllm serve}: an {@link OpenAiServer} until interrupted. */
public final class ServeCommand {

    private static final String USAGE = """
            usage: ./jvllm serve [options]
              --model M                  local directory or Hugging Face id (default: models/jvllm-demo)
              --host H                   address to listen on (default 127.0.0.1; 0.0.0.0 for all)
              --port P                   (default 8000)
              --api-key K                required as "Authorization: Bearer K" (default: $VLLM_API_KEY, else none)
              --served-model-name N      the name clients use (default: the --model value)
              --task generate|embed      (default: what the model does)
              --revision R               branch, tag or commit of a Hugging Face id
              --download-dir D           Hugging Face cache to use
              --max-model-len N          --max-num-seqs N   --device cuda|cpu|auto   --dtype T
              --gpu-memory-utilization F --enforce-eager    --threads N
            """;

    private ServeCommand() {
    }

    public static void main(String[] args) throws Exception {
        // A client gets 60 s to send its request line, headers and body (the JDK server waits
        // forever by default, so slow clients could hold connections); answers, streams among them,
        // have no limit. Set here, before the server's classes read it, unless given on the command line.
        if (System.getProperty("sun.net.httpserver.maxReqTime") == null) System.setProperty("sun.net.httpserver.maxReqTime", "60");
        String model = "models/jvllm-demo";
        LLM.Builder llm = LLM.builder();
        String host = "127.0.0.1", apiKey = System.getenv("VLLM_API_KEY"), servedName = null;
        int port = 8000;
        try {
            for (int i = 0; i < args.length; i++) {
                String option = args[i];
                if (option.equals("-h") || option.equals("--help")) {
                    System.out.print(USAGE);
                    return;
                }
                if (option.equals("--enforce-eager")) {
                    llm.enforceEager(true);
                    continue;
                }
                if (i + 1 >= args.length) throw new IllegalArgumentException(option + " needs a value");
                String value = args[++i];
                switch (option) {
                    case "--model" -> model = value;
                    case "--host" -> host = value;
                    case "--port" -> port = Integer.parseInt(value);
                    case "--api-key" -> apiKey = value;
                    case "--served-model-name" -> servedName = value;
                    case "--task" -> llm.task(Task.valueOf(value.toUpperCase(Locale.ROOT)));
                    case "--revision" -> llm.revision(value);
                    case "--download-dir" -> llm.downloadDir(Path.of(value));
                    case "--max-model-len" -> llm.maxModelLen(Integer.parseInt(value));
                    case "--max-num-seqs" -> llm.maxNumSeqs(Integer.parseInt(value));
                    case "--device" -> llm.device(value);
                    case "--dtype" -> llm.dtype(value);
                    case "--gpu-memory-utilization" -> llm.gpuMemoryUtilization(Double.parseDouble(value));
                    case "--threads" -> llm.threads(Integer.parseInt(value));
                    default -> throw new IllegalArgumentException("unknown option " + option);
                }
            }
        } catch (IllegalArgumentException e) {
            System.err.println("jvllm serve: " + e.getMessage() + "\n" + USAGE);
            System.exit(2);
        }
        OpenAiServer server;
        try {
            server = OpenAiServer.builder(llm.model(model).build()).host(host).port(port).apiKey(apiKey)
                    .servedModelName(servedName != null ? servedName : model).start();
        } catch (JvllmException e) {
            System.err.println("jvllm serve: " + e.getMessage());
            System.exit(1);
            return;
        }
        Runtime.getRuntime().addShutdownHook(new Thread(server::close, "jvllm-serve-shutdown"));
        System.err.println("jvllm serve: " + server.modelName() + " at " + server.address() + "/v1"
                + (apiKey != null ? " (API key required)" : ""));
        server.awaitClose();
    }
}
