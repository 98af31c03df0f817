/** Image preprocessing for vision-language models, bit-exact with Transformers' PIL-based processors. */
package dev.jvllm.models.vision;
