// Declarations of every FUSE op; operations.cpp registers them in one table.
#pragma once

#include <fuse_lowlevel.h>

#include "src/base/unique_fd.hpp"

namespace digestfs::fs {

// The lower fd behind an open file handle, and behind an open directory: its stream's, or for a
// directory opened with no message (see op_opendir) the directory opened into `own`; -1 with
// errno set when it cannot be opened.
int open_file_fd(const fuse_file_info* fi);
int open_dir_fd(fuse_req_t req, fuse_ino_t ino, const fuse_file_info* fi, UniqueFd& own);

void op_lookup(fuse_req_t, fuse_ino_t, const char*);
void op_forget(fuse_req_t, fuse_ino_t, uint64_t);
void op_forget_multi(fuse_req_t, size_t, fuse_forget_data*);
void op_getattr(fuse_req_t, fuse_ino_t, fuse_file_info*);
void op_setattr(fuse_req_t, fuse_ino_t, struct stat*, int, fuse_file_info*);
void op_readlink(fuse_req_t, fuse_ino_t);
void op_mknod(fuse_req_t, fuse_ino_t, const char*, mode_t, dev_t);
void op_mkdir(fuse_req_t, fuse_ino_t, const char*, mode_t);
void op_symlink(fuse_req_t, const char*, fuse_ino_t, const char*);
void op_link(fuse_req_t, fuse_ino_t, fuse_ino_t, const char*);
void op_unlink(fuse_req_t, fuse_ino_t, const char*);
void op_rmdir(fuse_req_t, fuse_ino_t, const char*);
void op_rename(fuse_req_t, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned int);
void op_statfs(fuse_req_t, fuse_ino_t);
void op_access(fuse_req_t, fuse_ino_t, int);
void op_getxattr(fuse_req_t, fuse_ino_t, const char*, size_t);
void op_listxattr(fuse_req_t, fuse_ino_t, size_t);
void op_setxattr(fuse_req_t, fuse_ino_t, const char*, const char*, size_t, int);
void op_removexattr(fuse_req_t, fuse_ino_t, const char*);
void op_opendir(fuse_req_t, fuse_ino_t, fuse_file_info*);
void op_readdir(fuse_req_t, fuse_ino_t, size_t, off_t, fuse_file_info*);
void op_readdirplus(fuse_req_t, fuse_ino_t, size_t, off_t, fuse_file_info*);
void op_releasedir(fuse_req_t, fuse_ino_t, fuse_file_info*);
void op_fsyncdir(fuse_req_t, fuse_ino_t, int, fuse_file_info*);
void op_open(fuse_req_t, fuse_ino_t, fuse_file_info*);
void op_create(fuse_req_t, fuse_ino_t, const char*, mode_t, fuse_file_info*);
void op_read(fuse_req_t, fuse_ino_t, size_t, off_t, fuse_file_info*);
void op_write(fuse_req_t, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*);
void op_flush(fuse_req_t, fuse_ino_t, fuse_file_info*);
void op_release(fuse_req_t, fuse_ino_t, fuse_file_info*);
void op_fsync(fuse_req_t, fuse_ino_t, int, fuse_file_info*);
void op_fallocate(fuse_req_t, fuse_ino_t, int, off_t, off_t, fuse_file_info*);
void op_ioctl(fuse_req_t, fuse_ino_t, unsigned int, void*, fuse_file_info*, unsigned, const void*,
              size_t, size_t);

}  // namespace digestfs::fs
