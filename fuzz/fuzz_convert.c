/*
 * libFuzzer target for the JSON decoders of the HTTP API: a JSON document
 * converted to a Value of every declared type (serving/convert.c), as a
 * feature and as a join key, and each Value that converts written back as
 * Feast's JSON (http/render.c) and parsed again. Conversions may refuse; they
 * may not crash, leak or write JSON that does not parse.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/json.h"
#include "http/http_int.h"
#include "serving/convert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct ldr_arena arena;
  static int ready;
  if (!ready) {
    ldr_arena_init(&arena, 4096, 16u << 20);
    ready = 1;
  }
  struct ldr_json *j = NULL;
  struct ldr_err err = {0};
  if (ldr_json_parse((const char *)data, size, &arena, 64, &j, NULL, &err) == LDR_OK) {
    for (int type = 0; type <= 48; type++)
      for (int key = 0; key < 2; key++) {
        Feast__Types__Value *v = NULL;
        ldr_err_clear(&err);
        if (ldr_json_to_value(j, type, key, &arena, &v, &err) != LDR_OK) continue;
        size_t len = feast__types__value__get_packed_size(v);
        uint8_t *bytes = ldr_arena_alloc(&arena, len + 1);
        if (bytes == NULL) break;
        feast__types__value__pack(v, bytes);
        struct ldr_sb sb = {0};
        ldr_http_put_value(&sb, bytes, len, &arena);
        const char *text = ldr_sb_str(&sb);
        struct ldr_json *back = NULL;
        if (text != NULL &&
            ldr_json_parse(text, sb.len, &arena, 200, &back, NULL, &err) != LDR_OK &&
            !arena.exhausted) {
          fprintf(stderr, "type %d: wrote JSON that does not parse: %s\n", type, text);
          abort();
        }
        ldr_sb_free(&sb);
      }
  }
  ldr_arena_reset(&arena);
  return 0;
}
