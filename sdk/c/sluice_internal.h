/* sluice_internal.h: the batch loop shared by the component exports and the native
 * test harness. Not for plugin authors. */
#ifndef SLUICE_INTERNAL_H
#define SLUICE_INTERNAL_H

#include "bindings/transform.h"

typedef struct exports_sluice_plugin_transformer_transform_t sluice__transform;

/* Takes ownership of `params` (n entries, malloc'd, as the canonical ABI hands them over). */
bool sluice__create(sluice_plugin_types_param_t *params, size_t n, sluice__transform **ret,
                    transform_string_t *err);
/* Takes ownership of `input`; on success fills `ret` with malloc'd lists. */
bool sluice__process(sluice__transform *t, sluice_plugin_types_batch_t *input,
                     sluice_plugin_types_output_t *ret, sluice_plugin_types_call_error_t *err);
void sluice__destroy(sluice__transform *t);

#endif
