/**
 * Tokenization for jvllm: {@link dev.jvllm.tokenizer.HfTokenizer} loads a Hugging Face
 * {@code tokenizer.json} (through DJL's binding of the Rust tokenizers library) with the special
 * tokens and chat template of {@code tokenizer_config.json}; {@link
 * dev.jvllm.tokenizer.IncrementalDetokenizer} turns generated ids into streamed text; {@link
 * dev.jvllm.tokenizer.ChatTemplate} renders chat templates in a sandboxed Jinja interpreter.
 *
 * <p>This module depends on no other jvllm module.
 */
package dev.jvllm.tokenizer;
