# Tests against real servers: a throwaway PostgreSQL and Redis per build
# directory, started by scripts/services as CTest fixtures "pg" and "redis"
# before the first test that needs one and stopped after the last, so
# `ctest` needs no server running beforehand (under -j too: CTest orders
# fixtures). Their files are in ${CMAKE_BINARY_DIR}/services/<service>.
# Included from tests/CMakeLists.txt, after weft_test().

set(WEFT_SERVICES_SCRIPT ${CMAKE_SOURCE_DIR}/scripts/services)
set(WEFT_SERVICES_DIR ${CMAKE_BINARY_DIR}/services)

foreach(svc pg redis)
  add_test(NAME services_${svc}_start
           COMMAND ${WEFT_SERVICES_SCRIPT} start ${svc} ${WEFT_SERVICES_DIR}/${svc})
  set_tests_properties(services_${svc}_start PROPERTIES
    FIXTURES_SETUP ${svc} LABELS "${svc};services" TIMEOUT 180)
  add_test(NAME services_${svc}_stop
           COMMAND ${WEFT_SERVICES_SCRIPT} stop ${svc} ${WEFT_SERVICES_DIR}/${svc})
  set_tests_properties(services_${svc}_stop PROPERTIES
    FIXTURES_CLEANUP ${svc} LABELS "${svc};services" TIMEOUT 120)
endforeach()

# weft_service_test(name label SERVICES pg|redis... [SHARED] [LONG] [TIMEOUT s]
#                   SOURCES...)
# A cmocka test as weft_test() makes it, run only with its servers up. It
# finds them through tests/services.h (weft_test_service_url("pg")). By
# default it holds each of its services alone (RESOURCE_LOCK service_<svc>):
# it may restart the server and count its sessions. SHARED: it does neither,
# and may run beside the others.
function(weft_service_test name label)
  cmake_parse_arguments(T "LONG;SHARED" "TIMEOUT" "SOURCES;SERVICES" ${ARGN})
  if(NOT T_SERVICES)
    message(FATAL_ERROR "weft_service_test(${name}): no SERVICES")
  endif()
  set(pass SOURCES ${T_SOURCES})
  if(T_LONG)
    list(APPEND pass LONG)
  endif()
  if(T_TIMEOUT)
    list(APPEND pass TIMEOUT ${T_TIMEOUT})
  endif()
  weft_test(${name} ${label} ${pass})
  target_compile_definitions(${name} PRIVATE
    WEFT_TEST_SERVICES_SCRIPT="${WEFT_SERVICES_SCRIPT}"
    WEFT_TEST_SERVICES_DIR="${WEFT_SERVICES_DIR}")
  set(env "")
  set(locks "")
  foreach(svc ${T_SERVICES})
    if(NOT svc MATCHES "^(pg|redis)$")
      message(FATAL_ERROR "weft_service_test(${name}): unknown service ${svc} (pg or redis)")
    endif()
    string(TOUPPER ${svc} SVC)
    list(APPEND env "WEFT_TEST_${SVC}_DIR=${WEFT_SERVICES_DIR}/${svc}")
    list(APPEND locks service_${svc})
  endforeach()
  set_tests_properties(${name} PROPERTIES FIXTURES_REQUIRED "${T_SERVICES}"
                       ENVIRONMENT "${env}")
  if(NOT T_SHARED)
    set_tests_properties(${name} PROPERTIES RESOURCE_LOCK "${locks}")
  endif()
endfunction()
