/*
 * gRPC server reflection (grpc.reflection.v1 and v1alpha, which share one
 * wire format): the descriptors of every proto larder serves, embedded at
 * build time as a FileDescriptorSet, indexed once at start and read-only
 * afterwards, so workers answer from it without a lock.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "service/service_int.h"

extern const unsigned char ldr_descriptor_set[];
extern const size_t ldr_descriptor_set_len;

struct symbol {
  char *name; /* fully qualified, no leading dot */
  size_t file;
};

struct file {
  const char *name;
  const uint8_t *bytes; /* the FileDescriptorProto as protoc wrote it */
  size_t len;
  size_t n_deps;
  size_t *deps; /* indices of the files it imports */
};

static struct {
  Google__Protobuf__FileDescriptorSet *set;
  struct file *files;
  size_t n_files;
  struct symbol *symbols;
  size_t n_symbols, cap_symbols;
  const char **services;
  size_t n_services;
} refl;

static int add_symbol(const char *prefix, const char *name, size_t file) {
  if (refl.n_symbols == refl.cap_symbols) {
    size_t cap = refl.cap_symbols ? 2 * refl.cap_symbols : 64;
    struct symbol *s = realloc(refl.symbols, cap * sizeof *s);
    if (s == NULL) return -1;
    refl.symbols = s;
    refl.cap_symbols = cap;
  }
  size_t n = strlen(prefix) + 1 + strlen(name) + 1;
  char *full = malloc(n);
  if (full == NULL) return -1;
  if (prefix[0])
    snprintf(full, n, "%s.%s", prefix, name);
  else
    snprintf(full, n, "%s", name);
  refl.symbols[refl.n_symbols++] = (struct symbol){full, file};
  return 0;
}

static int add_enums(const char *prefix, Google__Protobuf__EnumDescriptorProto **e, size_t n,
                     size_t file) {
  for (size_t i = 0; i < n; i++)
    if (add_symbol(prefix, e[i]->name, file) != 0) return -1;
  return 0;
}

static int add_messages(const char *prefix, Google__Protobuf__DescriptorProto **m, size_t n,
                        size_t file) {
  for (size_t i = 0; i < n; i++) {
    if (add_symbol(prefix, m[i]->name, file) != 0) return -1;
    const char *full = refl.symbols[refl.n_symbols - 1].name;
    if (add_messages(full, m[i]->nested_type, m[i]->n_nested_type, file) != 0 ||
        add_enums(full, m[i]->enum_type, m[i]->n_enum_type, file) != 0)
      return -1;
  }
  return 0;
}

static int by_symbol(const void *a, const void *b) {
  return strcmp(((const struct symbol *)a)->name, ((const struct symbol *)b)->name);
}

static ssize_t file_index(const char *name) {
  for (size_t i = 0; i < refl.n_files; i++)
    if (!strcmp(refl.files[i].name, name)) return (ssize_t)i;
  return -1;
}

enum ldr_rc ldr_reflection_init(struct ldr_err *err) {
  refl.set = google__protobuf__file_descriptor_set__unpack(NULL, ldr_descriptor_set_len,
                                                           ldr_descriptor_set);
  if (refl.set == NULL) return ldr_err_set(err, LDR_INTERNAL, "reflection: bad descriptor set");
  refl.n_files = refl.set->n_file;
  refl.files = calloc(refl.n_files + 1, sizeof *refl.files);
  refl.services = calloc(64, sizeof *refl.services);
  if (refl.files == NULL || refl.services == NULL) goto nomem;
  /* The raw bytes of each file: field 1 (tag 0x0a) of the set, in order. */
  const uint8_t *set = ldr_descriptor_set;
  size_t off = 0, k = 0;
  while (off < ldr_descriptor_set_len && k < refl.n_files && set[off] == 0x0a) {
    uint64_t len = 0;
    off++;
    for (int shift = 0; off < ldr_descriptor_set_len && shift < 64; shift += 7) {
      uint8_t b = set[off++];
      len |= (uint64_t)(b & 0x7f) << shift;
      if (!(b & 0x80)) break;
    }
    refl.files[k].bytes = set + off;
    refl.files[k].len = (size_t)len;
    refl.files[k].name = refl.set->file[k]->name;
    off += (size_t)len;
    k++;
  }
  for (size_t i = 0; i < refl.n_files; i++) {
    const Google__Protobuf__FileDescriptorProto *f = refl.set->file[i];
    const char *pkg = f->package ? f->package : "";
    refl.files[i].deps = calloc(f->n_dependency + 1, sizeof *refl.files[i].deps);
    if (refl.files[i].deps == NULL) goto nomem;
    for (size_t d = 0; d < f->n_dependency; d++) {
      ssize_t j = file_index(f->dependency[d]);
      if (j >= 0) refl.files[i].deps[refl.files[i].n_deps++] = (size_t)j;
    }
    if (add_messages(pkg, f->message_type, f->n_message_type, i) != 0 ||
        add_enums(pkg, f->enum_type, f->n_enum_type, i) != 0)
      goto nomem;
    for (size_t s = 0; s < f->n_service; s++) {
      if (add_symbol(pkg, f->service[s]->name, i) != 0) goto nomem;
      const char *svc = refl.symbols[refl.n_symbols - 1].name;
      if (refl.n_services < 63) refl.services[refl.n_services++] = svc;
      for (size_t m = 0; m < f->service[s]->n_method; m++)
        if (add_symbol(svc, f->service[s]->method[m]->name, i) != 0) goto nomem;
    }
  }
  qsort(refl.symbols, refl.n_symbols, sizeof *refl.symbols, by_symbol);
  return LDR_OK;
nomem:
  ldr_reflection_free();
  return ldr_err_set(err, LDR_NOMEM, "reflection: out of memory");
}

void ldr_reflection_free(void) {
  for (size_t i = 0; i < refl.n_symbols; i++) free(refl.symbols[i].name);
  for (size_t i = 0; refl.files != NULL && i < refl.n_files; i++) free(refl.files[i].deps);
  free(refl.symbols);
  free(refl.files);
  free(refl.services);
  if (refl.set != NULL) google__protobuf__file_descriptor_set__free_unpacked(refl.set, NULL);
  memset(&refl, 0, sizeof refl);
}

/* Marks file i and what it imports, depth first. */
static void mark(size_t i, unsigned char *seen, size_t *order, size_t *n) {
  if (seen[i]) return;
  seen[i] = 1;
  order[(*n)++] = i;
  for (size_t d = 0; d < refl.files[i].n_deps; d++) mark(refl.files[i].deps[d], seen, order, n);
}

static enum ldr_rc reply(struct ldr_handler_ctx *c,
                         Grpc__Reflection__V1__ServerReflectionResponse *r) {
  size_t n = grpc__reflection__v1__server_reflection_response__get_packed_size(r);
  c->reply = grpc_slice_malloc(n);
  grpc__reflection__v1__server_reflection_response__pack(r, GRPC_SLICE_START_PTR(c->reply));
  return LDR_OK;
}

enum ldr_rc ldr_reflection_answer(struct ldr_handler_ctx *c) {
  ProtobufCAllocator al = {ldr_arena_pb_alloc, ldr_arena_pb_free, c->arena};
  Grpc__Reflection__V1__ServerReflectionRequest *q =
      grpc__reflection__v1__server_reflection_request__unpack(&al, c->req_len, c->req);
  if (q == NULL) return ldr_undecodable(c, "ServerReflectionRequest");
  Grpc__Reflection__V1__ServerReflectionResponse r =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  Grpc__Reflection__V1__ErrorResponse e = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  r.valid_host = q->host;
  r.original_request = q;
  ssize_t file = -1;
  const char *missing = NULL;
  switch (q->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES: {
    Grpc__Reflection__V1__ListServiceResponse *l = ldr_arena_alloc(c->arena, sizeof *l);
    Grpc__Reflection__V1__ServiceResponse **svcs =
        ldr_arena_calloc(c->arena, refl.n_services + 1, sizeof *svcs);
    if (l == NULL || svcs == NULL) return ldr_err_set(&c->err, LDR_EXHAUSTED, "out of memory");
    grpc__reflection__v1__list_service_response__init(l);
    for (size_t i = 0; i < refl.n_services; i++) {
      svcs[i] = ldr_arena_alloc(c->arena, sizeof *svcs[i]);
      if (svcs[i] == NULL) return ldr_err_set(&c->err, LDR_EXHAUSTED, "out of memory");
      grpc__reflection__v1__service_response__init(svcs[i]);
      svcs[i]->name = (char *)refl.services[i];
    }
    l->n_service = refl.n_services;
    l->service = svcs;
    r.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    r.list_services_response = l;
    return reply(c, &r);
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    file = file_index(q->file_by_filename);
    missing = "file";
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL: {
    const char *name = q->file_containing_symbol;
    if (name[0] == '.') name++;
    struct symbol key = {(char *)name, 0};
    const struct symbol *s = bsearch(&key, refl.symbols, refl.n_symbols, sizeof key, by_symbol);
    file = s ? (ssize_t)s->file : -1;
    missing = "symbol";
    break;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
    struct symbol key = {q->all_extension_numbers_of_type, 0};
    if (bsearch(&key, refl.symbols, refl.n_symbols, sizeof key, by_symbol) != NULL) {
      Grpc__Reflection__V1__ExtensionNumberResponse *x = ldr_arena_alloc(c->arena, sizeof *x);
      if (x == NULL) return ldr_err_set(&c->err, LDR_EXHAUSTED, "out of memory");
      grpc__reflection__v1__extension_number_response__init(x);
      x->base_type_name = q->all_extension_numbers_of_type; /* larder's protos declare none */
      r.message_response_case =
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
      r.all_extension_numbers_response = x;
      return reply(c, &r);
    }
    missing = "type";
    break;
  }
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
    missing = "extension";
    break;
  default:
    return ldr_err_set(&c->err, LDR_INVALID, "request: no message_request is set");
  }
  if (file < 0) {
    e.error_code = 5; /* NOT_FOUND */
    e.error_message = (char *)(missing[0] == 'f'   ? "file not found"
                               : missing[0] == 's' ? "symbol not found"
                               : missing[0] == 't' ? "type not found"
                                                   : "extension not found");
    r.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    r.error_response = &e;
    return reply(c, &r);
  }
  /* The file and everything it imports, the file first, as grpc-go does. */
  unsigned char *seen = ldr_arena_calloc(c->arena, refl.n_files + 1, 1);
  size_t *order = ldr_arena_calloc(c->arena, refl.n_files + 1, sizeof *order);
  Grpc__Reflection__V1__FileDescriptorResponse *fd = ldr_arena_alloc(c->arena, sizeof *fd);
  ProtobufCBinaryData *blobs = ldr_arena_calloc(c->arena, refl.n_files + 1, sizeof *blobs);
  if (seen == NULL || order == NULL || fd == NULL || blobs == NULL)
    return ldr_err_set(&c->err, LDR_EXHAUSTED, "out of memory");
  size_t n = 0;
  mark((size_t)file, seen, order, &n);
  for (size_t i = 0; i < n; i++)
    blobs[i] =
        (ProtobufCBinaryData){refl.files[order[i]].len, (uint8_t *)refl.files[order[i]].bytes};
  grpc__reflection__v1__file_descriptor_response__init(fd);
  fd->n_file_descriptor_proto = n;
  fd->file_descriptor_proto = blobs;
  r.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  r.file_descriptor_response = fd;
  return reply(c, &r);
}
