;; wasi_files.wat - reads and writes a file in a WASI preopened directory
;; (manifest `allowed_paths`). Needs wasi=True: imports wasi_snapshot_preview1.
;;
;; Config: "dir"  = the guest path of the directory (as mapped by
;;                  allowed_paths, e.g. "/data"); the plugin looks it up among
;;                  the preopened directories (fd 3, 4, ...) by name.
;;         "file" = a path relative to that directory.
;; Exports (all () -> i32):
;;   read  : output = the file's bytes (at most 64 KiB)
;;   write : file = the input (created or truncated); output "ok"
;; Failures set an error (so the call fails with that text) and return 1:
;;   "missing config dir" / "missing config file"
;;   "no preopened directory <dir>"  (the host mounted no such directory)
;;   "open failed: errno <n>"        (path_open refused: not found, read-only,
;;                                    outside the directory, ...)
;;   "read failed: errno <n>" / "write failed: errno <n>"
(module
  (import "wasi_snapshot_preview1" "fd_prestat_get"
    (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_dir_name"
    (func $fd_prestat_dir_name (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close"
    (func $fd_close (param i32) (result i32)))
  (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
  (import "extism:host/env" "length" (func $length (param i64) (result i64)))
  (import "extism:host/env" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "extism:host/env" "store_u8" (func $store_u8 (param i64 i32)))
  (import "extism:host/env" "input_length" (func $input_length (result i64)))
  (import "extism:host/env" "input_load_u8" (func $input_load_u8 (param i64) (result i32)))
  (import "extism:host/env" "output_set" (func $output_set (param i64 i64)))
  (import "extism:host/env" "error_set" (func $error_set (param i64)))
  (import "extism:host/env" "config_get" (func $config_get (param i64) (result i64)))

  ;; Layout: 0..511 constant text, 512.. WASI scratch, 1024 dir name,
  ;; 2048 file name, 3072 preopen name, 4096 error message, 65536.. data.
  (memory (export "memory") 2)
  (data (i32.const 0) "dir")
  (data (i32.const 8) "file")
  (data (i32.const 16) "ok")
  (data (i32.const 32) "missing config dir")
  (data (i32.const 64) "missing config file")
  (data (i32.const 96) "no preopened directory ")
  (data (i32.const 128) "open failed: errno ")
  (data (i32.const 160) "read failed: errno ")
  (data (i32.const 192) "write failed: errno ")
  (global $dir_len (mut i32) (i32.const 0))
  (global $file_len (mut i32) (i32.const 0))

  ;; New kernel block holding linear memory [ptr, ptr+len).
  (func $str (param $ptr i32) (param $len i32) (result i64)
    (local $off i64) (local $i i32)
    (local.set $off (call $alloc (i64.extend_i32_u (local.get $len))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (call $store_u8
          (i64.add (local.get $off) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (local.get $ptr) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $off))

  ;; config[key] copied to dst (at most 1000 bytes); its length, or -1 when absent.
  (func $config (param $key i32) (param $key_len i32) (param $dst i32) (result i32)
    (local $v i64) (local $n i32) (local $i i32)
    (local.set $v (call $config_get (call $str (local.get $key) (local.get $key_len))))
    (if (i64.eqz (local.get $v)) (then (return (i32.const -1))))
    (local.set $n (i32.wrap_i64 (call $length (local.get $v))))
    (if (i32.gt_u (local.get $n) (i32.const 1000)) (then (local.set $n (i32.const 1000))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (local.get $dst) (local.get $i))
          (call $load_u8 (i64.add (local.get $v) (i64.extend_i32_u (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; Fail the call with text [ptr, ptr+len) followed by decimal $errno when
  ;; $errno >= 0. Returns 1.
  (func $fail (param $ptr i32) (param $len i32) (param $errno i32) (result i32)
    (local $n i32) (local $digits i32) (local $v i32) (local $i i32)
    (memory.copy (i32.const 4096) (local.get $ptr) (local.get $len))
    (local.set $n (local.get $len))
    (if (i32.ge_s (local.get $errno) (i32.const 0))
      (then
        ;; count digits
        (local.set $v (local.get $errno))
        (local.set $digits (i32.const 1))
        (block $d (loop $l
          (br_if $d (i32.lt_u (local.get $v) (i32.const 10)))
          (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
          (br $l)))
        ;; write them backwards
        (local.set $v (local.get $errno))
        (local.set $i (local.get $digits))
        (block $d2 (loop $l2
          (br_if $d2 (i32.eqz (local.get $i)))
          (local.set $i (i32.sub (local.get $i) (i32.const 1)))
          (i32.store8 (i32.add (i32.add (i32.const 4096) (local.get $n)) (local.get $i))
            (i32.add (i32.const 48) (i32.rem_u (local.get $v) (i32.const 10))))
          (local.set $v (i32.div_u (local.get $v) (i32.const 10)))
          (br $l2)))
        (local.set $n (i32.add (local.get $n) (local.get $digits)))))
    (call $error_set (call $str (i32.const 4096) (local.get $n)))
    (i32.const 1))

  ;; Read config dir and file; 0 on success, else the failure (1) already set.
  (func $load_config (result i32)
    (global.set $dir_len (call $config (i32.const 0) (i32.const 3) (i32.const 1024)))
    (if (i32.lt_s (global.get $dir_len) (i32.const 0))
      (then (return (call $fail (i32.const 32) (i32.const 18) (i32.const -1)))))
    (global.set $file_len (call $config (i32.const 8) (i32.const 4) (i32.const 2048)))
    (if (i32.lt_s (global.get $file_len) (i32.const 0))
      (then (return (call $fail (i32.const 64) (i32.const 19) (i32.const -1)))))
    (i32.const 0))

  ;; The preopened directory fd whose name is the configured dir, or -1.
  (func $find_dir (result i32)
    (local $fd i32) (local $n i32) (local $i i32) (local $same i32)
    (local.set $fd (i32.const 3))
    (loop $next_fd
      (if (i32.ne (call $fd_prestat_get (local.get $fd) (i32.const 512)) (i32.const 0))
        (then (return (i32.const -1))))
      (local.set $n (i32.load (i32.const 516)))
      (if (i32.and
            (i32.eqz (i32.load8_u (i32.const 512)))
            (i32.and (i32.eq (local.get $n) (global.get $dir_len))
                     (i32.le_u (local.get $n) (i32.const 1000))))
        (then
          (if (i32.eqz (call $fd_prestat_dir_name (local.get $fd) (i32.const 3072) (local.get $n)))
            (then
              (local.set $same (i32.const 1))
              (local.set $i (i32.const 0))
              (block $cmp_done
                (loop $cmp
                  (br_if $cmp_done (i32.ge_u (local.get $i) (local.get $n)))
                  (if (i32.ne (i32.load8_u (i32.add (i32.const 3072) (local.get $i)))
                              (i32.load8_u (i32.add (i32.const 1024) (local.get $i))))
                    (then (local.set $same (i32.const 0)) (br $cmp_done)))
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br $cmp)))
              (if (local.get $same) (then (return (local.get $fd))))))))
      (local.set $fd (i32.add (local.get $fd) (i32.const 1)))
      (br $next_fd))
    (i32.const -1))

  ;; Open the configured file with oflags/rights; its fd, or -1 with the failure set.
  (func $open (param $oflags i32) (param $rights i64) (result i32)
    (local $dir i32) (local $err i32)
    (if (call $load_config) (then (return (i32.const -1))))
    (local.set $dir (call $find_dir))
    (if (i32.lt_s (local.get $dir) (i32.const 0))
      (then
        (memory.copy (i32.const 4096) (i32.const 96) (i32.const 23))
        (memory.copy (i32.const 4119) (i32.const 1024) (global.get $dir_len))
        (call $error_set (call $str (i32.const 4096) (i32.add (i32.const 23) (global.get $dir_len))))
        (return (i32.const -1))))
    (local.set $err
      (call $path_open (local.get $dir) (i32.const 0) (i32.const 2048) (global.get $file_len)
        (local.get $oflags) (local.get $rights) (i64.const 0) (i32.const 0) (i32.const 520)))
    (if (local.get $err)
      (then
        (drop (call $fail (i32.const 128) (i32.const 19) (local.get $err)))
        (return (i32.const -1))))
    (i32.load (i32.const 520)))

  (func (export "read") (result i32)
    (local $fd i32) (local $total i32) (local $err i32) (local $n i32) (local $o i64) (local $i i32)
    (local.set $fd (call $open (i32.const 0) (i64.const 2))) ;; FD_READ
    (if (i32.lt_s (local.get $fd) (i32.const 0)) (then (return (i32.const 1))))
    (block $eof
      (loop $more
        (br_if $eof (i32.ge_u (local.get $total) (i32.const 65536)))
        (i32.store (i32.const 528) (i32.add (i32.const 65536) (local.get $total)))
        (i32.store (i32.const 532) (i32.sub (i32.const 65536) (local.get $total)))
        (local.set $err (call $fd_read (local.get $fd) (i32.const 528) (i32.const 1) (i32.const 524)))
        (if (local.get $err)
          (then
            (drop (call $fd_close (local.get $fd)))
            (return (call $fail (i32.const 160) (i32.const 19) (local.get $err)))))
        (local.set $n (i32.load (i32.const 524)))
        (br_if $eof (i32.eqz (local.get $n)))
        (local.set $total (i32.add (local.get $total) (local.get $n)))
        (br $more)))
    (drop (call $fd_close (local.get $fd)))
    (local.set $o (call $alloc (i64.extend_i32_u (local.get $total))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $total)))
        (call $store_u8 (i64.add (local.get $o) (i64.extend_i32_u (local.get $i)))
          (i32.load8_u (i32.add (i32.const 65536) (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $output_set (local.get $o) (i64.extend_i32_u (local.get $total)))
    (i32.const 0))

  (func (export "write") (result i32)
    (local $fd i32) (local $n i32) (local $done i32) (local $err i32) (local $i i32)
    (local.set $n (i32.wrap_i64 (call $input_length)))
    (if (i32.gt_u (local.get $n) (i32.const 65536)) (then (local.set $n (i32.const 65536))))
    (block $copied
      (loop $next
        (br_if $copied (i32.ge_u (local.get $i) (local.get $n)))
        (i32.store8 (i32.add (i32.const 65536) (local.get $i))
          (call $input_load_u8 (i64.extend_i32_u (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    ;; O_CREAT | O_TRUNC, FD_WRITE
    (local.set $fd (call $open (i32.const 9) (i64.const 64)))
    (if (i32.lt_s (local.get $fd) (i32.const 0)) (then (return (i32.const 1))))
    (block $all
      (loop $more
        (br_if $all (i32.ge_u (local.get $done) (local.get $n)))
        (i32.store (i32.const 528) (i32.add (i32.const 65536) (local.get $done)))
        (i32.store (i32.const 532) (i32.sub (local.get $n) (local.get $done)))
        (local.set $err (call $fd_write (local.get $fd) (i32.const 528) (i32.const 1) (i32.const 524)))
        (if (local.get $err)
          (then
            (drop (call $fd_close (local.get $fd)))
            (return (call $fail (i32.const 192) (i32.const 20) (local.get $err)))))
        (local.set $done (i32.add (local.get $done) (i32.load (i32.const 524))))
        (br $more)))
    (drop (call $fd_close (local.get $fd)))
    (call $output_set (call $str (i32.const 16) (i32.const 2)) (i64.const 2))
    (i32.const 0))
)
