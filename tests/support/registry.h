/*
 * A Feast registry of project my_project (LDR_TEST_PROJECT) built with
 * protobuf-c, for the tests of pushes, writes to the online store and the
 * serving rules, which registry_example has no views for:
 *
 *   entities  driver (driver_id INT64), customer (customer_id STRING), __dummy
 *   sources   driver_file  (timestamp_field event_timestamp, created column created)
 *             driver_push  (push source over driver_file)
 *             customer_file (timestamp_field ts, created column created_at,
 *                           field_mapping cust -> customer_id, src_rate -> rate)
 *             customer_push (push source over customer_file)
 *             global_push  (push source over a batch source without fields)
 *             ghost_push   (push source over driver_file)
 *   views     driver_stats    conv_rate DOUBLE, trips INT64; ttl 1 day;
 *                             batch driver_file, stream driver_push
 *             driver_live     (stream feature view) speed DOUBLE; stream driver_push
 *             driver_labels   (label view) label_ok BOOL; source driver_push
 *             customer_stats  rate FLOAT, label STRING; customer_file, customer_push
 *             global_stats    (entity-less) total INT64; global_push
 *             plain           x INT64; ttl 0.5 s; batch driver_file, no push source
 *             disabled_view   d INT64; spec.disabled
 *             materializing   m INT64; meta.state MATERIALIZING
 *             versioned       v INT64; meta.current_version_number 2
 *             orphan          x INT64; entity ghost, not in the registry; ghost_push
 *             odfv_stored     (on-demand, write_to_online_store) ratio DOUBLE, note STRING
 *             odfv_computed   (on-demand, computed at request time) out DOUBLE
 *             odfv_orphan     (on-demand, write_to_online_store) as odfv_stored; entity ghost
 *   services  svc: driver_stats [conv_rate] as "ds" with driver_id from column
 *             "other_id", then global_stats
 */
#ifndef LDR_TEST_REGISTRY_H
#define LDR_TEST_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

/* The views above that are stored, NULL-terminated: the tables to create. */
extern const char *const ldr_test_push_views[];

/* The registry's bytes (a serialized feast.core.Registry), malloc'd. */
uint8_t *ldr_test_push_registry(size_t *len);

#endif
