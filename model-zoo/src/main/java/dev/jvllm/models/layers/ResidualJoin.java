package dev.jvllm.models.layers;

import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * Where a pre-norm layer's branch output goes: added into the residual stream (after the branch's
 * own output norm where it has one, Gemma 2's "sandwich" norms), then read by the next branch
 * under {@code next}, the norm of that branch; the join returns that branch's {@link BranchInput}.
 * With next null the stream is left as it is (the last layer, or a next layer that normalizes its
 * input itself) and the join returns null.
 *
 * @param outputNorm normalizes the branch output before the add, or null
 * @param normed     where the next branch's normalized input goes
 * @param product    scratch shaped as the branch output
 */
public record ResidualJoin(Tensor residual, Norm outputNorm, Norm next, Tensor normed, Tensor product) {

    /**
     * {@code residual += linear(x)}, the branch's last projection, and the next norm: one backend
     * call where the output goes straight into the stream ({@link Backend#linearAdd}; with an
     * RMSNorm next, {@link Backend#linearAddRmsNorm}, which may leave the norm pending for the
     * next branch's products).
     */
    public BranchInput addProjection(Backend backend, Linear linear, Tensor x) {
        if (outputNorm == null && linear.clampLimit() <= 0) {
            if (next == null) {
                backend.linearAdd(x, linear.weight(), linear.bias(), product, residual);
                return null;
            }
            if (next instanceof RmsNorm norm) {
                boolean applied = backend.linearAddRmsNorm(x, linear.weight(), linear.bias(), product, residual,
                        norm.weight(), norm.eps(), norm.weightOffset(), normed);
                return applied ? BranchInput.of(normed) : BranchInput.pending(residual, norm, normed);
            }
        }
        linear.apply(backend, x, product);
        return add(backend, product);
    }

    /** {@code residual += branch} (an output the branch computed itself), and the next norm. */
    public BranchInput add(Backend backend, Tensor branch) {
        if (outputNorm != null) {
            outputNorm.apply(backend, branch, normed);
            backend.add(residual, normed, residual);
            return next == null ? null : BranchInput.applied(backend, next, residual, normed);
        }
        if (next == null) {
            backend.add(residual, branch, residual);
            return null;
        }
        next.addThenApply(backend, residual, branch, normed);
        return BranchInput.of(normed);
    }
}
