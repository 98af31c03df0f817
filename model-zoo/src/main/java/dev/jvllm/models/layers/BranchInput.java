package dev.jvllm.models.layers;

import dev.jvllm.spi.Activation;
import dev.jvllm.spi.Backend;
import dev.jvllm.spi.Tensor;

/**
 * The input of a pre-norm layer's branch (its attention or its feed-forward block): the residual
 * stream under the branch's norm. Either the norm has been applied and {@code normed} holds the
 * result, or ({@code pendingNorm} not null) it is still to be applied to {@code residual}, into
 * normed: the branch's first products may then compute it themselves
 * ({@link Backend#rmsNormLinears}, {@link Backend#rmsNormGatedLinear}), which spares a one-token
 * decode step on a GPU a kernel per norm. An input is read once: whichever call reads it applies
 * a pending norm.
 */
public record BranchInput(Tensor residual, RmsNorm pendingNorm, Tensor normed) {

    public BranchInput {
        if (pendingNorm != null && residual == null) {
            throw new IllegalArgumentException("a pending norm needs the residual stream it normalizes");
        }
    }

    /** Rows read as they are (normalized already, or by a branch that takes no norm). */
    public static BranchInput of(Tensor rows) {
        return new BranchInput(null, null, rows);
    }

    /** The residual stream whose RMSNorm, into normed, is still to be applied. */
    public static BranchInput pending(Tensor residual, RmsNorm norm, Tensor normed) {
        return new BranchInput(residual, norm, normed);
    }

    /** x under norm, into normed: left pending where the norm is an RMSNorm, else applied now. */
    public static BranchInput under(Backend backend, Norm norm, Tensor x, Tensor normed) {
        return norm instanceof RmsNorm rms ? pending(x, rms, normed) : applied(backend, norm, x, normed);
    }

    /** x under norm, applied now into normed. */
    public static BranchInput applied(Backend backend, Norm norm, Tensor x, Tensor normed) {
        norm.apply(backend, x, normed);
        return of(normed);
    }

    public int rows() {
        return normed.rows();
    }

    /** The normalized rows (normed), a pending norm applied first. */
    public Tensor normalized(Backend backend) {
        if (pendingNorm != null) {
            pendingNorm.apply(backend, residual, normed);
        }
        return normed;
    }

    /** {@code outs[i] = linears[i](rows)} as one backend call, a pending norm computed inside it. */
    public void project(Backend backend, Linear[] linears, Tensor[] outs) {
        if (pendingNorm == null) {
            Linear.applyAll(backend, normed, linears, outs);
            return;
        }
        Linear.applyAll(backend, linears, outs, (weights, biases) -> backend.rmsNormLinears(residual,
                pendingNorm.weight(), pendingNorm.eps(), pendingNorm.weightOffset(), normed, weights, biases, outs));
    }

    /**
     * {@code out = fn(gate(rows)) * up(rows)} as one backend call ({@link Backend#gatedLinear}), a
     * pending norm computed inside it; gate and up are plain products (no bias, no clamp).
     */
    public void projectGated(Backend backend, Activation fn, Linear gate, Linear up, Tensor upScratch, Tensor out) {
        if (pendingNorm == null) {
            backend.gatedLinear(fn, normed, gate.weight(), up.weight(), upScratch, out);
        } else {
            backend.rmsNormGatedLinear(fn, residual, pendingNorm.weight(), pendingNorm.eps(), pendingNorm.weightOffset(),
                    normed, gate.weight(), up.weight(), upScratch, out);
        }
    }
}
