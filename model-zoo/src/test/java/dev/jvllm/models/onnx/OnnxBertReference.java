package dev.jvllm.models.onnx;

import ai.onnxruntime.OnnxTensor;
import ai.onnxruntime.OrtEnvironment;
import ai.onnxruntime.OrtException;
import ai.onnxruntime.OrtSession;

import java.nio.LongBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The second implementation: the ONNX export run by ONNX Runtime, embedding as bge does — the
 * [CLS] state of {@code last_hidden_state}, L2-normalized. Inputs of one call are padded to the
 * longest and masked, as a sentence-transformers batch is.
 */
public final class OnnxBertReference implements AutoCloseable {

    private final OrtEnvironment environment = OrtEnvironment.getEnvironment();
    private final OrtSession session;

    public OnnxBertReference(Path onnxFile, int threads) {
        try {
            OrtSession.SessionOptions options = new OrtSession.SessionOptions();
            options.setIntraOpNumThreads(threads);
            options.setInterOpNumThreads(1);
            options.setOptimizationLevel(OrtSession.SessionOptions.OptLevel.ALL_OPT);
            this.session = environment.createSession(onnxFile.toString(), options);
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime cannot load " + onnxFile + ": " + e.getMessage(), e);
        }
    }

    /** Normalized CLS embeddings of token-id inputs ([CLS] … [SEP] included), one batch. */
    public List<float[]> embed(List<int[]> inputs) {
        int batch = inputs.size();
        int length = inputs.stream().mapToInt(a -> a.length).max().orElse(0);
        long[] ids = new long[batch * length], mask = new long[batch * length], types = new long[batch * length];
        for (int b = 0; b < batch; b++) {
            int[] input = inputs.get(b);
            for (int t = 0; t < input.length; t++) {
                ids[b * length + t] = input[t];
                mask[b * length + t] = 1;
            }
        }
        long[] shape = {batch, length};
        try (OnnxTensor idTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(ids), shape);
             OnnxTensor maskTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(mask), shape);
             OnnxTensor typeTensor = OnnxTensor.createTensor(environment, LongBuffer.wrap(types), shape);
             OrtSession.Result result = session.run(Map.of("input_ids", idTensor, "attention_mask", maskTensor,
                     "token_type_ids", typeTensor))) {
            float[][][] hidden = (float[][][]) result.get("last_hidden_state").orElseThrow().getValue();
            List<float[]> out = new ArrayList<>(batch);
            for (int b = 0; b < batch; b++) {
                float[] cls = hidden[b][0].clone();
                double norm = 0;
                for (float v : cls) norm += v * v;
                float scale = (float) (1 / Math.sqrt(norm));
                for (int i = 0; i < cls.length; i++) cls[i] *= scale;
                out.add(cls);
            }
            return out;
        } catch (OrtException e) {
            throw new IllegalStateException("ONNX Runtime failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        try {
            session.close();
        } catch (OrtException e) {
            throw new IllegalStateException(e);
        }
    }
}
