// RAII owners for librpm objects. Every rpmts, Header, FD_t, iterator, keyring and key the
// project touches is held by one of these, so no error path can leak or double-free one.
#pragma once

#include <rpm/header.h>
#include <rpm/rpmdb.h>
#include <rpm/rpmfi.h>
#include <rpm/rpmfiles.h>
#include <rpm/rpmio.h>
#include <rpm/rpmkeyring.h>
#include <rpm/rpmpgp.h>
#include <rpm/rpmts.h>

#include <memory>
#include <type_traits>

namespace digestfs::rpm {

template <auto Free>
struct FreeWith {
  template <class P>
  void operator()(P p) const {
    Free(p);
  }
};

template <class Handle, auto Free>
using Owned = std::unique_ptr<std::remove_pointer_t<Handle>, FreeWith<Free>>;

using TsPtr = Owned<rpmts, rpmtsFree>;
using HeaderPtr = Owned<Header, headerFree>;
using FdPtr = Owned<FD_t, Fclose>;
using IteratorPtr = Owned<rpmdbMatchIterator, rpmdbFreeIterator>;
using FilesPtr = Owned<rpmfiles, rpmfilesFree>;
using FiPtr = Owned<rpmfi, rpmfiFree>;
using KeyringPtr = Owned<rpmKeyring, rpmKeyringFree>;
using PubkeyPtr = Owned<rpmPubkey, rpmPubkeyFree>;
using DigParamsPtr = Owned<pgpDigParams, pgpDigParamsFree>;

// Memory that librpm allocated with malloc and hands over to the caller.
struct FreeMalloced {
  void operator()(void* p) const { std::free(p); }
};
template <class T>
using Malloced = std::unique_ptr<T, FreeMalloced>;

}  // namespace digestfs::rpm
