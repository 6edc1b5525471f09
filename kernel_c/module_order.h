/*
 * module_order.h - the order a plugin's modules are instantiated in (docs/ABI.md, "Linking").
 *
 * Owns: the instantiation order (a module after the modules it imports from; manifest order kept
 * where it is valid), the cycles between modules (their function imports forwarded: import_plan.h;
 * a cycle of non-function imports reported as LINK_PROBLEM_CYCLE).
 */
#ifndef EXTISM_FAST_MODULE_ORDER_H
#define EXTISM_FAST_MODULE_ORDER_H

#include <stddef.h>

#include "import_plan.h"
#include "link_problem.h"

/* module_order_build: the instantiation order of the `count` modules whose plans are given
 * (positions: those of the plans): `order` gets count positions; imports from a module placed
 * later (around a cycle) become IMPORT_FROM_FORWARD, *forward_count their number, and the other
 * slots' forward_type is freed. Returns 0, or -1 and fills *problem (LINK_PROBLEM_CYCLE or
 * LINK_PROBLEM_MEMORY). */
int module_order_build(import_plan *plans, size_t count, size_t *order, size_t *forward_count, link_problem *problem);

#endif
