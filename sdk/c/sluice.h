/*
 * sluice.h: write a Sluice transform in C.
 *
 *   #include "sluice.h"
 *
 *   static const char *create(const sluice_params *params, void **state) {
 *       static const char *const allowed[] = {NULL};
 *       return sluice_params_only(params, allowed); // NULL = ok, else the error
 *   }
 *
 *   static sluice_status process(void *state, const sluice_event *event, sluice_emitter *out) {
 *       sluice_json *v = sluice_event_json(event);
 *       if (!sluice_json_is_object(v)) return sluice_reject(out, "expected a JSON object");
 *       sluice_json_set(v, "seen", sluice_json_bool(true));
 *       sluice_emit_json(out, v);   // key, headers and timestamp copied from the input
 *       return SLUICE_OK;
 *   }
 *
 *   SLUICE_EXPORT_TRANSFORM(.name = "my-plugin", .version = "0.1.0",
 *                           .description = "Marks every event as seen.",
 *                           .create = create, .process = process);
 *
 * `sluice plugin build DIR` compiles every .c file in DIR except *_test.c together with this
 * SDK (sluice.c, sluice_json.c, sluice_view.c and the generated bindings in bindings/) to a component.
 *
 * Per event, `process` returns SLUICE_OK (after emitting 0..n events), or the result of
 * sluice_reject (the event is dead-lettered with the reason and whatever was emitted
 * for it is withdrawn), sluice_retry (the host retries the whole batch later) or
 * sluice_fatal (the stage stops). Nothing is dropped silently.
 *
 * Memory: JSON values and other sluice_alloc'd memory made while processing an event
 * are freed after that event; those made in `create` (including the parameter strings)
 * live as long as the transform. Use malloc for state that changes while processing.
 */
#ifndef SLUICE_H
#define SLUICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sluice_json.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The contract version this SDK builds against. */
#define SLUICE_CONTRACT_VERSION "0.1.0"

/* A borrowed byte range. */
typedef struct {
    const uint8_t *ptr;
    size_t len;
} sluice_bytes;

typedef struct sluice_event sluice_event;
typedef struct sluice_emitter sluice_emitter;
typedef struct sluice_params sluice_params;

typedef enum {
    SLUICE_OK = 0,
    SLUICE_REJECT,
    SLUICE_RETRY,
    SLUICE_FATAL,
} sluice_status;

/* What a plugin exports: see SLUICE_EXPORT_TRANSFORM. */
typedef struct {
    const char *name;
    const char *version;
    const char *description;
    /* Validates parameters and sets *state; returns NULL, or the error that fails the
     * deployment (copied; sluice_format / sluice_params_only messages are fine). */
    const char *(*create)(const sluice_params *params, void **state);
    /* Processes one event. */
    sluice_status (*process)(void *state, const sluice_event *event, sluice_emitter *out);
    /* Frees the state when the host drops the transform (may be NULL). */
    void (*destroy)(void *state);
} sluice_transform;

/* Defines the plugin, with designated initializers for the fields above. */
#define SLUICE_EXPORT_TRANSFORM(...) const sluice_transform sluice_transform_def = {__VA_ARGS__}

/* ---- events ------------------------------------------------------------------ */

/* The key; false if the event has none. */
bool sluice_event_key(const sluice_event *e, sluice_bytes *key);
/* The value (UTF-8 JSON inside a pipeline); false for a tombstone. */
bool sluice_event_value(const sluice_event *e, sluice_bytes *value);
bool sluice_event_is_tombstone(const sluice_event *e);
/* The value parsed as JSON; NULL for a tombstone or a value that is not JSON. */
sluice_json *sluice_event_json(const sluice_event *e);
/* Milliseconds since the Unix epoch. */
int64_t sluice_event_timestamp_ms(const sluice_event *e);
/* Name of the input stream the event arrived on ("" if unknown). */
sluice_bytes sluice_event_stream(const sluice_event *e);
/* Index of the event in the input batch. */
uint32_t sluice_event_index(const sluice_event *e);
/* Headers: how many, the i-th (false if out of range or malformed), the first named `name`. */
size_t sluice_event_header_count(const sluice_event *e);
bool sluice_event_header_at(const sluice_event *e, size_t i, sluice_bytes *name, sluice_bytes *value);
bool sluice_event_header(const sluice_event *e, const char *name, sluice_bytes *value);

/* ---- emitting ---------------------------------------------------------------- */

/* Emits the input event unchanged. */
void sluice_forward(sluice_emitter *out);
/* Emits an event with the input's key, headers and timestamp and a new value. */
void sluice_emit_value(sluice_emitter *out, const void *value, size_t len);
/* Same, with `value` serialized as JSON straight into the output batch. */
void sluice_emit_json(sluice_emitter *out, const sluice_json *value);
/* Emits a tombstone with the input's key, headers and timestamp. */
void sluice_emit_tombstone(sluice_emitter *out);

/* A fully specified output event for sluice_emit. */
typedef struct {
    const sluice_bytes *key;   /* NULL: no key */
    const sluice_bytes *value; /* NULL: tombstone */
    const sluice_bytes *header_names;
    const sluice_bytes *header_values;
    size_t header_count;
    int64_t timestamp_ms;
} sluice_out_event;
void sluice_emit(sluice_emitter *out, const sluice_out_event *event);

/* Return these from `process`. The message is copied; the *f forms take printf formats. */
sluice_status sluice_reject(sluice_emitter *out, const char *reason);
sluice_status sluice_retry(sluice_emitter *out, const char *message);
sluice_status sluice_fatal(sluice_emitter *out, const char *message);
/* A reason of `len` bytes (it may contain NULs). */
sluice_status sluice_reject_n(sluice_emitter *out, const void *reason, size_t len);
sluice_status sluice_rejectf(sluice_emitter *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- parameters -------------------------------------------------------------- */

size_t sluice_params_count(const sluice_params *p);
/* The i-th parameter (NUL-terminated); false if out of range. */
bool sluice_params_at(const sluice_params *p, size_t i, const char **name, const char **value);
/* The value of `name`, or NULL. */
const char *sluice_params_get(const sluice_params *p, const char *name);
/* NULL if every parameter is in `allowed` (a NULL-terminated list), else
 * "unknown parameter `x`; allowed: a, b". */
const char *sluice_params_only(const sluice_params *p, const char *const allowed[]);
/* Sets *value; returns NULL, or "parameter `name` is required". */
const char *sluice_params_required(const sluice_params *p, const char *name, const char **value);

/* ---- misc -------------------------------------------------------------------- */

/* printf into the current arena. */
char *sluice_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef enum {
    SLUICE_LOG_TRACE,
    SLUICE_LOG_DEBUG,
    SLUICE_LOG_INFO,
    SLUICE_LOG_WARN,
    SLUICE_LOG_ERROR,
} sluice_log_level;

/* Logs through the host (tagged with stage, plugin and version); stderr natively. */
void sluice_log(sluice_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_H */
