/*
 * {{name}}: a Sluice transform in C. Edit `process`; run `make test`, then
 * `sluice plugin build .` and `sluice plugin test <wasm> --input events.jsonl`.
 */
#include <stdlib.h>

#include "sluice.h"

/* The transform's state, built once from the stage's parameters. */
typedef struct {
    const char *field; /* lives as long as the transform (create's arena) */
} plugin;

static const char *create(const sluice_params *params, void **state) {
    static const char *const allowed[] = {"field", NULL};
    const char *error = sluice_params_only(params, allowed);
    if (error) return error;
    plugin *p = malloc(sizeof *p);
    if (!p) return "out of memory";
    p->field = sluice_params_get(params, "field");
    if (!p->field) p->field = "seen";
    *state = p;
    return NULL;
}

static sluice_status process(void *state, const sluice_event *event, sluice_emitter *out) {
    plugin *p = state;
    if (sluice_event_is_tombstone(event)) {
        sluice_forward(out); /* deletes must survive a transform */
        return SLUICE_OK;
    }
    sluice_json *value = sluice_event_json(event); /* freed after this event */
    if (!sluice_json_is_object(value)) return sluice_reject(out, "expected a JSON object");
    sluice_json_set(value, p->field, sluice_json_bool(true));
    sluice_emit_json(out, value); /* key, headers and timestamp copied from the input */
    return SLUICE_OK;
}

static void destroy(void *state) { free(state); }

SLUICE_EXPORT_TRANSFORM(.name = "{{name}}", .version = "0.1.0",
                        .description = "Marks every JSON object with a field.",
                        .create = create, .process = process, .destroy = destroy);
